# The one source of polyonnx's version; package.json must say the same (tests/python/test_package.py checks).
__version__ = "0.1.0"
