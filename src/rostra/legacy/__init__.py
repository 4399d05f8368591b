"""The deprecated ``/api/v1/legacy`` mirror of the resource routes, in seed 004's envelope."""
