"""Sub-commands of the ``uksim`` CLI, one module each."""
