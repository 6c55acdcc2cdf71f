"""The catalogue of bad inputs, malformed events and injected faults, and the runner that checks each
ends as catalogued."""
