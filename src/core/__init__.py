"""Typed models shared by every layer: properties, inputs, config, accounts."""
