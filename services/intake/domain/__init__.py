"""The rules of intake (征集), pure: no I/O. One module per topic."""
