"""Developer tools that live with the tests: corpus comparison, table extraction."""
