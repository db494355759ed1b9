"""Tests of the Azure API Management fragments (a package, so its conftest never shadows
another suite's when several run in one session)."""
