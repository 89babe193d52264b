"""Files on disk, below every layer that writes or reads them.

- atomic: every safe write (temporary file or staging folder beside the target, fsync, rename)
  and every refusal to write through a link or delete a file nerwin did not write
- yamlfile: reading a config file's YAML sections, with one-line errors
- paths: where the bundled data, the vector cache and run folders live
- versions: package versions recorded with each run

May import the standard library, PyYAML and nerwin.errors only: nothing else of nerwin.
"""
