"""`hf-ser convert SRC DST`: convert a released checkpoint (challenge baseline, vox-profile attribute model) into
an hf_ser model folder (`hf_ser.publishing.convert`)."""

from __future__ import annotations

NAME = "convert"


def add_parser(commands):
    """Add `hf-ser convert` to the `hf-ser` sub-command parser."""
    from ..publishing.convert import OUTPUT_SCALES

    parser = commands.add_parser(
        NAME,
        help="Convert a released checkpoint (challenge baseline, vox-profile attribute model) to an hf_ser folder.",
    )
    parser.add_argument(
        "src", help="The released checkpoint's folder (training output or downloaded Hub model)."
    )
    parser.add_argument("dst", help="Where to write the hf_ser model folder.")
    parser.add_argument(
        "--encoder-config",
        default=None,
        help="config.json of the speech encoder, when it is not WavLM-large / Whisper-large-v3 (the released ones).",
    )
    parser.add_argument(
        "--output-scale",
        choices=OUTPUT_SCALES,
        default="likert",
        help="Attribute outputs on 1-7 (default) or on the released scale.",
    )
    return parser


def run(args) -> int:
    """Run a parsed `hf-ser convert` command; a folder that cannot be converted (`ConversionError`) is a usage
    error, printed by `hf_ser.cli` (exit status 2)."""
    from ..publishing.convert import convert, detect_release

    kind = detect_release(args.src)
    key = "encoder_config" if kind == "challenge_baseline" else "audio_config"
    model = convert(args.src, args.dst, output_scale=args.output_scale, **{key: args.encoder_config})
    print(f"Converted {args.src} ({kind}) into a {type(model).__name__} in {args.dst}")
    return 0
