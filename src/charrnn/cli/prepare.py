"""`charrnn prepare`: its flags and its run, apart from the rest of the command line so that it never
loads torch (`launch.py` sends it here before anything else is imported)."""

from __future__ import annotations

import argparse
import json
import time

from ..data.prepared import CHUNK_CHARS, describe, prepare, verify
from ..errors import CharRNNError
from .report import reported


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("texts", nargs="*", metavar="TEXT", help="text files to encode, in order")
    p.add_argument("--out", help="the prepared corpus directory to create")
    p.add_argument("--verify", metavar="DIR", help="re-hash a prepared corpus's ids against its manifest instead")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files (default utf-8)")
    p.add_argument("--errors", default="strict", help="what to do with undecodable bytes: strict, replace, ignore")
    p.add_argument(
        "--bytes",
        action="store_true",
        help="read the files as raw bytes: one symbol per byte, nothing decoded or translated (train with --bytes)",
    )
    p.add_argument(
        "--chunk-chars", type=int, default=CHUNK_CHARS, help=f"characters read at a time (default {CHUNK_CHARS:,})"
    )


def run(args) -> int:
    if args.verify:
        prepared = verify(args.verify)
        print(f"{prepared.path}: {prepared.chars:,} characters, ids match their sha256")
        return 0
    if not args.texts or not args.out:
        raise CharRNNError("give the text files and --out DIR (or --verify DIR)")
    if args.chunk_chars <= 0:
        raise CharRNNError(f"--chunk-chars must be positive, got {args.chunk_chars}")
    start = time.perf_counter()
    if args.bytes and (args.encoding, args.errors) != ("utf-8", "strict"):
        raise CharRNNError("--bytes reads the files' bytes as they are: drop --encoding and --errors")
    prepared = prepare(args.texts, args.out, args.encoding, args.errors, args.chunk_chars, args.bytes)
    info = describe(prepared)
    print(
        f"prepared {prepared.path}: {prepared.chars:,} characters, vocabulary {info['vocab_size']} "
        f"({info['dtype']}), in {time.perf_counter() - start:.1f}s; train with: charrnn train {prepared.path}"
    )
    return 0


def add_prepare(commands) -> None:
    p = commands.add_parser("prepare", help="encode text files once into a corpus training memory-maps")
    add_flags(p)
    p.set_defaults(run=run)
    # `charrnn prepare` itself goes to `main` below before torch loads; this parser serves --help and docs.


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="charrnn prepare", description="encode text files once, for training")
    add_flags(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return reported(lambda: run(args), args.debug, interrupted="interrupted (nothing was left behind)")


def info(path: str, as_json: bool) -> int:
    from ..data.prepared import open_prepared

    described = describe(open_prepared(path))
    if as_json:
        print(json.dumps(described, indent=1))
        return 0
    print(f"{described['path']}: a prepared corpus of {described['chars']:,} characters")
    print(f"vocabulary {described['vocab_size']} ({described['dtype']}), encoding {described['encoding']}")
    print(f"ids sha256 {described['ids_sha256']}")
    for source in described["sources"]:
        print(f"  {source['path']}  {source['bytes']:,} bytes")
    return 0
