"""The data compiler: KB -> training shards + benchmark (see shards.build)."""
