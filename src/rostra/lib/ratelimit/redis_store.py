"""The Redis store: counters shared by every process and host, one round trip per batch.

The check of both windows and the counting in both happen in one Lua script, so Redis runs them
as one step: however many processes ask at once, no more requests are admitted than the
limits allow. The script takes the time from Redis itself, so hosts whose clocks disagree
still share the same windows. A caller's counters live in one hash (one key) that expires when
its longest window ends. One script call counts every request of a batch, whoever the callers
are, so the store needs one Redis server (a primary), not a Redis Cluster.

Every batch of calls is bounded by ``timeout_seconds`` (here rather than by the client's
socket timeout, which on Python 3.11 costs a task per command). When Redis does not answer in
time, the store raises ``StoreUnavailable`` and stops asking for ``cooldown_seconds``, so a dead
Redis costs each request nothing rather than a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from rostra.lib.ratelimit.policy import Decision, Policy, Usage, WindowState
from rostra.lib.ratelimit.store import StoreUnavailable, billing_period

OVERAGE_KEEP_SECONDS = 62 * 86_400
"""An overage counter outlives its month long enough to be billed."""

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# One call counts every request of a batch, in order, as one step (see RedisStore).
# KEYS: per request, two: the caller's counters, a hash of "<window>:n" (used) and "<window>:e"
#       (ends, ms), and the caller's overage counter for the billing period.
# ARGV[1]: seconds to keep an overage counter; then per request: the number of windows, then
#          per window four values: name, seconds, limit (-1: unlimited), blocks (1 or 0).
# Returns per request {allowed, now, overage, used_1, ends_1, used_2, ends_2, ...}.
HIT_SCRIPT = (
    """
if redis.replicate_commands then redis.replicate_commands() end
"""
    + _NOW_MS
    + """
local replies = {}
local a = 2
for c = 1, #KEYS / 2 do
  local counters = KEYS[2 * c - 1]
  local windows = tonumber(ARGV[a])
  local fields = {}
  for i = 1, windows do
    fields[2 * i - 1] = ARGV[a + 4 * i - 3] .. ':n'
    fields[2 * i] = ARGV[a + 4 * i - 3] .. ':e'
  end
  local stored = redis.call('HMGET', counters, unpack(fields))
  local used, ends = {}, {}
  local allowed = 1
  for i = 1, windows do
    local w = a + 4 * i - 3
    local limit = tonumber(ARGV[w + 2])
    local ends_at = tonumber(stored[2 * i])
    if ends_at == nil or ends_at <= now then
      used[i] = 0
      ends[i] = now + tonumber(ARGV[w + 1]) * 1000
    else
      used[i] = tonumber(stored[2 * i - 1]) or 0
      ends[i] = ends_at
    end
    if ARGV[w + 3] == '1' and limit >= 0 and used[i] >= limit then allowed = 0 end
  end
  local overage = 0
  if allowed == 1 then
    local updates = {}
    local last_end = 0
    for i = 1, windows do
      local w = a + 4 * i - 3
      local limit = tonumber(ARGV[w + 2])
      used[i] = used[i] + 1
      updates[4 * i - 3] = fields[2 * i - 1]
      updates[4 * i - 2] = used[i]
      updates[4 * i - 1] = fields[2 * i]
      updates[4 * i] = ends[i]
      if ends[i] > last_end then last_end = ends[i] end
      if ARGV[w + 3] == '0' and limit >= 0 and used[i] > limit then overage = 1 end
    end
    redis.call('HSET', counters, unpack(updates))
    redis.call('PEXPIREAT', counters, last_end)
    if overage == 1 then
      redis.call('INCR', KEYS[2 * c])
      redis.call('EXPIRE', KEYS[2 * c], ARGV[1])
    end
  end
  local reply = {allowed, now, overage}
  for i = 1, windows do
    reply[#reply + 1] = used[i]
    reply[#reply + 1] = ends[i]
  end
  replies[c] = reply
  a = a + 1 + 4 * windows
end
return replies
"""
)

# KEYS: the caller's counters and overage counter, as for one request of HIT_SCRIPT.
# ARGV[1]: overage to take back (1 or 0); then per window: name, ends.
# Only the window the request was counted in gives it back: a newer one never saw it.
REFUND_SCRIPT = """
for i = 2, #ARGV, 2 do
  local fields = redis.call('HMGET', KEYS[1], ARGV[i] .. ':n', ARGV[i] .. ':e')
  if tonumber(fields[2]) == tonumber(ARGV[i + 1]) and (tonumber(fields[1]) or 0) > 0 then
    redis.call('HINCRBY', KEYS[1], ARGV[i] .. ':n', -1)
  end
end
if ARGV[1] == '1' and (tonumber(redis.call('GET', KEYS[2])) or 0) > 0 then
  redis.call('DECR', KEYS[2])
end
return 1
"""

# KEYS as for REFUND_SCRIPT. ARGV: window names. Returns {now, overage, used_1, ends_1, ...}.
PEEK_SCRIPT = (
    _NOW_MS
    + """
local reply = {now, tonumber(redis.call('GET', KEYS[2])) or 0}
for i = 1, #ARGV do
  local fields = redis.call('HMGET', KEYS[1], ARGV[i] .. ':n', ARGV[i] .. ':e')
  reply[#reply + 1] = tonumber(fields[1]) or 0
  reply[#reply + 1] = tonumber(fields[2]) or 0
end
return reply
"""
)

PACKED_KEYS_KEPT = 10_000
"""Callers whose packed keys are kept (all are dropped when this many are)."""
POLICIES_KEPT = 256
"""Policies whose packed script arguments are kept (likewise)."""

_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def _bulk(value: object) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True, slots=True)
class _Script:
    source: str
    sha: bytes


def _script(source: str) -> _Script:
    return _Script(source, hashlib.sha1(source.encode()).hexdigest().encode())  # noqa: S324


_HIT, _REFUND, _PEEK = _script(HIT_SCRIPT), _script(REFUND_SCRIPT), _script(PEEK_SCRIPT)
_OVERAGE_KEEP = _bulk(OVERAGE_KEEP_SECONDS)


@dataclass(slots=True)
class _Call:
    script: _Script
    key: str
    period: str | None
    """Billing period of the overage counter; None: the current one when the batch is sent."""
    args: bytes
    """The call's ARGV in Redis's wire format (RESP); for a hit, its part of the batch's."""
    arg_count: int
    reply: asyncio.Future[Any]


@dataclass(slots=True)
class _Command:
    """One EVALSHA on the wire: every hit of a batch, or one other call."""

    script: _Script
    calls: list[_Call]
    packed: bytes


class RedisStore:
    """The limiter's calls go to Redis in batches, one batch at a time, on one connection.

    A call made while a batch is on its way waits for it and then leaves with every other call
    made meanwhile, in one write; under load that is one write and one wake-up for many
    requests instead of one each. Every hit of a batch goes in one EVALSHA of HIT_SCRIPT, which
    Redis runs as one step counting the requests in order, so batching changes the cost, not
    the counting; its one reply (parsed by hiredis when installed) answers them all, where a
    reply per request cost redis-py's read path once each. A refund or a peek is an EVALSHA of
    its own in the same write. The commands are written in Redis's wire format here, from
    parts prepared once per policy and caller, on a connection held from the client's pool:
    redis-py's per-command packing, pipeline and pool bookkeeping cost more than the rest of
    the limiter put together.
    """

    hit_now = None
    """Every count waits for Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout_seconds: float = 0.5,
        cooldown_seconds: float = 1.0,
    ) -> None:
        self.pool = redis.connection_pool
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self.cooldown_seconds = cooldown_seconds
        self._resting_until = 0.0
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._connection: AbstractConnection | None = None
        self._period = ("", 0)  # (billing period, ms at which it ends)
        self._packed_keys: dict[str, bytes] = {}
        self._hit_args: dict[int, tuple[Policy, bytes, int]] = {}

    def _keys(self, key: str, period: str) -> bytes:
        """The caller's two keys in Redis's wire format."""
        counters = f"{self.prefix}{{{key}}}"
        return _bulk(counters) + _bulk(f"{counters}:overage:{period}")

    def _current_keys(self, key: str, period: str) -> bytes:
        """``_keys`` for the current period, kept per caller: most requests come from callers
        seen moments ago."""
        keys = self._packed_keys.get(key)
        if keys is None:
            if len(self._packed_keys) >= PACKED_KEYS_KEPT:
                self._packed_keys.clear()
            keys = self._packed_keys[key] = self._keys(key, period)
        return keys

    def _current_period(self) -> str:
        now = _now_ms()
        period, ends = self._period
        if now >= ends:
            new_period = billing_period(now)
            if new_period != period:
                self._packed_keys.clear()
            # Re-checked each minute: cheap, and right at the turn of the month.
            self._period = (new_period, now - now % 60_000 + 60_000)
            period = new_period
        return period

    async def _run(
        self, script: _Script, key: str, period: str | None, args: bytes, arg_count: int
    ) -> list[int]:
        """One call; its time is bounded by the batch it goes in (see ``_send``)."""
        if time.monotonic() < self._resting_until:
            raise StoreUnavailable("Redis failed moments ago; not asked again yet")
        reply = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(script, key, period, args, arg_count, reply))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        result: list[int] = await reply
        return result

    async def _send_all(self) -> None:
        batch: list[_Call] = []
        try:
            # Started as a task, so the requests of this turn of the loop join the first batch.
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch)
        except BaseException as exc:
            # Neither a bug nor a shutdown may leave requests waiting for ever.
            _fail([*batch, *self._queue], StoreUnavailable(f"Redis calls abandoned: {exc!r}"))
            self._queue = []
            if not isinstance(exc, Exception):
                raise
        finally:
            self._sender = None

    def _commands(self, batch: list[_Call]) -> list[_Command]:
        """Every hit of the batch in one EVALSHA (first), then one per other call."""
        period = self._current_period()
        hits = [call for call in batch if call.script is _HIT]
        commands = []
        if hits:
            parts = [_bulk(2 * len(hits))]
            parts += [self._current_keys(call.key, period) for call in hits]
            parts.append(_OVERAGE_KEEP)
            parts += [call.args for call in hits]
            length = 4 + 2 * len(hits) + sum(call.arg_count for call in hits)
            commands.append(_Command(_HIT, hits, _evalsha(_HIT, length, b"".join(parts))))
        for call in batch:
            if call.script is not _HIT:
                keys = self._keys(call.key, call.period or period)
                packed = _evalsha(
                    call.script, 5 + call.arg_count, b"$1\r\n2\r\n" + keys + call.args
                )
                commands.append(_Command(call.script, [call], packed))
        return commands

    async def _send(self, batch: list[_Call]) -> None:
        if time.monotonic() < self._resting_until:
            _fail(batch, StoreUnavailable("Redis failed moments ago; not asked again yet"))
            return
        commands = self._commands(batch)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                replies = await self._exchange_packed([c.packed for c in commands])
                missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
                if missing:  # Redis restarted or flushed its scripts: load them, ask again
                    again = [commands[i] for i in missing]
                    loads = [b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n" + _bulk(c.script.source)
                             for c in again]  # fmt: skip
                    await self._exchange_packed(loads)
                    answers = await self._exchange_packed([c.packed for c in again])
                    for i, reply in zip(missing, answers, strict=True):
                        replies[i] = reply
        except _FAILURES as exc:
            await self._drop_connection()
            self._resting_until = time.monotonic() + self.cooldown_seconds
            _fail(batch, StoreUnavailable(f"Redis did not answer: {exc!r}"))
            return
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, Exception):
                _fail(command.calls, StoreUnavailable(f"Redis refused the call: {reply!r}"))
                continue
            answers = reply if command.script is _HIT else [reply]
            for call, answer in zip(command.calls, answers, strict=True):
                if not call.reply.done():
                    call.reply.set_result(answer)

    async def _exchange_packed(self, commands: list[bytes]) -> list[Any]:
        """Write the commands at once and read their replies in order; an error reply takes
        the place of its command's answer."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = await self.pool.get_connection()  # type: ignore[no-untyped-call]
            connection = self._connection
            try:
                await connection.send_packed_command(b"".join(commands), check_health=False)
                return [await _reply(connection) for _ in commands]
            except (RedisConnectionError, OSError):
                # A connection to a Redis that has since restarted: one more try on a fresh
                # one. A call that did reach Redis would be counted twice, which refuses early
                # and never admits too many.
                await self._drop_connection()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self.pool.release(connection)

    def _policy_args(self, policy: Policy) -> tuple[bytes, int]:
        """``_hit_args``, kept per policy object: policies are few and immutable, and looking
        one up by identity costs less than hashing it (a dataclass hashes field by field)."""
        known = self._hit_args.get(id(policy))
        if known is None or known[0] is not policy:
            if len(self._hit_args) >= POLICIES_KEPT:  # overrides re-read make new objects
                self._hit_args.clear()
            known = self._hit_args[id(policy)] = (policy, *_hit_args(policy))
        return known[1], known[2]

    async def hit(self, key: str, policy: Policy) -> Decision:
        args, count = self._policy_args(policy)
        reply = await self._run(_HIT, key, None, args, count)
        # {allowed, now, overage, used_1, ends_1, ...}: Lua's numbers arrive as ints.
        return Decision(
            reply[0] == 1,
            policy.windows,
            tuple(reply[3::2]),
            tuple(reply[4::2]),
            reply[1],
            reply[2],
        )

    async def refund(self, key: str, decision: Decision) -> None:
        args: list[object] = [decision.overage]
        for state in decision.states:
            args += [state.window.name, state.resets_at_ms]
        period = billing_period(decision.now_ms)
        await self._run(_REFUND, key, period, b"".join(map(_bulk, args)), len(args))

    async def peek(self, key: str, policy: Policy) -> Usage:
        period = self._current_period()
        names = [window.name for window in policy.windows]
        reply = await self._run(_PEEK, key, period, b"".join(map(_bulk, names)), len(names))
        now = int(reply[0])
        states = []
        for i, window in enumerate(policy.windows):
            used, ends = int(reply[2 + 2 * i]), int(reply[3 + 2 * i])
            if ends <= now:
                used, ends = 0, now + window.seconds * 1000
            states.append(WindowState(window, used, ends))
        return Usage(tuple(states), now, period, int(reply[1]))


def _fail(batch: list[_Call], error: Exception) -> None:
    for call in batch:
        if not call.reply.done():
            call.reply.set_exception(error)


async def _reply(connection: AbstractConnection) -> Any:
    try:
        return await connection.read_response()
    except ResponseError as exc:
        return exc


def _hit_args(policy: Policy) -> tuple[bytes, int]:
    """A request's part of HIT_SCRIPT's ARGV for a policy, packed, and how many values."""
    args: list[object] = [len(policy.windows)]
    for window in policy.windows:
        limit = -1 if window.limit is None else window.limit
        args += [window.name, window.seconds, limit, 1 if window.blocks else 0]
    return b"".join(map(_bulk, args)), len(args)


def _evalsha(script: _Script, length: int, keys_and_args: bytes) -> bytes:
    """The EVALSHA command of ``length`` parts in Redis's wire format."""
    return b"*%d\r\n$7\r\nEVALSHA\r\n%s%s" % (length, _bulk(script.sha), keys_and_args)


def _now_ms() -> int:
    return int(time.time() * 1000)
