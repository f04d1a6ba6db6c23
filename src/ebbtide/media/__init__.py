"""media part: any reasonable upload → an adaptive HLS ladder (see ARCHITECTURE.md).

Modules, one job each (import them directly; this package stays cheap to import):
  errors    MediaError, TranscodeCancelled, FfmpegFailed
  ffmpeg    ffmpeg_path(), run_ffmpeg() with progress/cancel, nvenc_works()
  probe     probe(path) -> ProbeResult (PyAV)
  ladder    plan_ladder(probe, cfg) -> Ladder (pure)
  command   the one-process ffmpeg argv for a ladder (pure; CPU and NVENC shapes)
  progress  -progress parser -> Progress(fraction, speed, eta)
  hls       measured bandwidths, master playlist
  validate  validate_hls(outdir, source_duration)
  pipeline  transcode(src, outdir, cfg, on_progress, cancel) -> TranscodeResult
  samples   generate_clip(): lavfi test clips for every part's tests and the demo
"""
