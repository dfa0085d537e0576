"""The browser interface: manage, monitor, configure and train an instrument."""
