"""Tests of mailbot.staff: codes, links, commands and actions by mail."""
