"""Webhook delivery pieces with no framework and no Rostra imports: signing, the SSRF
address guard, the retry schedule and the HTTP sender."""
