"""Test support: tiny servers of the tests' own, a real redis-server, a Django REST framework Face Studio."""
