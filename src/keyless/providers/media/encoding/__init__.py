"""The Media Services encoder: preset validation and plans (presets), the PyAV encoder program (run)
and the streaming server manifest it writes next to the MP4s (manifest)."""
