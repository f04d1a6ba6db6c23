"""ebbtide: uploads become HLS ladders on a worker fleet that scales from zero and back."""

__version__ = "0.1.0"
