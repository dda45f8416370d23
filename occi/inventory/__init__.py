"""The cloud's inventory: zones > clusters > hosts, where entities are placed, and their backends."""
