"""Pure renderers: one module per source, each turning typed input into a `Contribution`."""
