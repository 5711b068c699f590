"""The demo: the hub's main job on an embedded test cluster (`make demo`)."""
