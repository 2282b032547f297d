"""Test support: talk to a real cluster through kubectl, wait on conditions, run the operator."""
