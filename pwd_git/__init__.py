"""pwd-git: Programming with Data, git-native.

The knowledge base is source code, `build` compiles it into training shards and a
benchmark, `train` compiles the model, `test` runs the benchmark as unit tests.
"""

__version__ = "0.1.0"
