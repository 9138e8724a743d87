"""plmstruct: find, inject and tune the structural knowledge inside protein language models."""

__version__ = "0.1.0"
