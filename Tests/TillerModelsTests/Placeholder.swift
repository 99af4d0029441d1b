// Model tests.
