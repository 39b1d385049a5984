"""Thin routers: parse, call a service, map errors to HTTP codes."""
