"""The ``edgeae`` command line: a thin click layer over the library.

Each command parses options, calls one library function and prints the result. Heavy
imports (torch, onnx, onnxruntime) happen inside the commands so ``edgeae --help`` is
instant. Any :class:`edgeae.errors.EdgeAEError` becomes ``Error: ...`` and exit code 1.
"""

from __future__ import annotations

import logging
import sys

import click

from edgeae.atomic import interrupted, on_interrupt
from edgeae.config import MAX_LATENT_BITS, MIN_LATENT_BITS, MODEL_KINDS
from edgeae.errors import EdgeAEError

__all__ = ["cli", "main"]


# Packages of the `train` extra: a base (runtime-only) install lacks them.
_TRAIN_EXTRA = {"torch", "onnx", "onnxscript", "safetensors", "sklearn", "matplotlib"}


class _Group(click.Group):
    """A click group that turns library errors into ``Error: ...`` without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            if interrupted():  # a Ctrl-C Python dropped on its way (edgeae.atomic: it stopped every commit)
                raise KeyboardInterrupt
            return result
        except EdgeAEError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # unwritable or missing output folders, full disks, ...
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except ModuleNotFoundError as exc:
            if exc.name == "constriction":  # found, but it cannot be imported (a broken install)
                raise click.ClickException(
                    "the constriction package cannot be imported; set EDGEAE_CODER=builtin to code .eae "
                    "streams with edgeae's built-in range coder (the same bytes), or reinstall it") from None
            if exc.name not in _TRAIN_EXTRA:
                raise
            raise click.ClickException(
                f"this command needs the training side of edgeae ({exc.name} is not installed): "
                "pip install 'edgeae[train]'"
            ) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


class _Notes(logging.Handler):
    """Library notes (logger ``edgeae``, e.g. leftovers of a killed run removed) as plain stderr lines."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


def _notes_to_stderr() -> None:
    """Print the library's notes as they read, whatever logging setup an imported package made."""
    log = logging.getLogger("edgeae")
    if not any(isinstance(h, _Notes) for h in log.handlers):
        log.addHandler(_Notes(logging.INFO))
        log.propagate = False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgeae")
def cli() -> None:
    """edgeae: autoencoders from PyTorch training to edge deployment.

    \b
    train -> export -> encode / decode / reconstruct / compress -> bench
    """
    _notes_to_stderr()


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, on_interrupt)  # Ctrl-C as Python's own, remembered (edgeae.atomic)
    cli(prog_name="edgeae")


# ---------------------------------------------------------------------------------------
# Commands are grouped by stage below: training, export, runtime, compression, benchmark.
# ---------------------------------------------------------------------------------------


# --- training ------------------------------------------------------------------------------


@cli.command("train")
@click.option("--data", default="digits", show_default=True,
              help="digits (built in), an IDX file/folder, .npy/.npz, an image folder, a CSV file, or a "
                   "UCR/UEA .ts file of signals.")
@click.option("--signal", is_flag=True,
              help="Signals: a .npy/.npz/.csv holds windows (N, C, T), or (N, T) of one channel (a 3-D .npy "
                   "is otherwise grayscale images). .ts files are always signals. See docs/timeseries.md.")
@click.option("--window", type=int, default=None, metavar="LENGTH",
              help="Signals: cut a (T, C) recording (.csv with one column per channel, 2-D .npy) or each case "
                   "of a .ts / (N, C, T) .npy into windows of LENGTH steps.")
@click.option("--hop", type=int, default=None, metavar="STEPS",
              help="Steps between window starts [default: LENGTH, no overlap].")
@click.option("--model", "model_kind", type=click.Choice(MODEL_KINDS), default="mlp", show_default=True)
@click.option("--hidden", default=None, help="MLP hidden sizes, e.g. 512,128 [default: one layer, ~16% of the input].")
@click.option("--code-size", type=int, default=None, help="Bottleneck width [default: 32, or input/4 for small inputs].")
@click.option("--channels", default="16,32", show_default=True, help="Conv channels, one stride-2 layer each.")
@click.option("--activation", default="relu", show_default=True)
@click.option("--output-activation", default=None, help="sigmoid | identity | tanh [default: sigmoid for [0, 1] data].")
@click.option("--code-activation", default=None, help="identity | sigmoid | relu ... [default: identity].")
@click.option("--loss", type=click.Choice(["mse", "bce", "mae"]), default=None,
              help="Reconstruction loss [default: bce for VAEs on [0, 1] data, else mse].")
@click.option("--beta", type=float, default=1.0, show_default=True, help="KL weight (VAE).")
@click.option("--noise", default=None, help="Train as a denoiser: gaussian:0.3 | saltpepper:0.1 | mask:0.25.")
@click.option("--latent-bits", type=click.IntRange(MIN_LATENT_BITS, MAX_LATENT_BITS), default=None, help="Train with codes quantized to B bits.")
@click.option("--augment-shift", type=int, default=0, show_default=True,
              help="Images: random translations of up to N pixels while training (regularizes small data sets).")
@click.option("--epochs", type=int, default=50, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=5e-3, show_default=True)
@click.option("--patience", type=int, default=8, show_default=True, help="Early stopping patience (epochs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--split", type=click.Choice(["random", "ordered"]), default="random", show_default=True,
              help="ordered holds out the last samples (e.g. MNIST: first 9,000 train, last 1,000 held out).")
@click.option("--resize", default=None, help="Resize folder images to HxW, e.g. 28x28.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", default=None, help="Run folder [default: runs/<data>-<model>-<code>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier run in --out; it is kept until the new run ends (docs/outputs.md).")
@click.option("--nproc-per-node", type=click.IntRange(1), default=None,
              help="Train on N local processes (torchrun + DDP; gloo on CPU, NCCL on CUDA). "
                   "--batch-size stays the global batch. See docs/scaling.md.")
def train_cmd(model_kind: str, resize: str | None, nproc_per_node: int | None, **options) -> None:
    """Train an autoencoder and write a run folder.

    \b
    Examples:
      edgeae train                                   # MLP on the built-in digits
      edgeae train --data ../data/mnist --model conv --code-size 32 --split ordered
      edgeae train --model vae --beta 0.5 --out runs/vae
      edgeae train --noise gaussian:0.3 --out runs/denoise
      edgeae train --data BasicMotions_TRAIN.ts --model conv1d --code-size 16 --out runs/motions
      edgeae train --data walk.csv --window 100 --hop 50 --model conv1d --out runs/walk
      edgeae train --data ../data/mnist --nproc-per-node 2 --out runs/ddp
    """
    import os

    if nproc_per_node is not None and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from edgeae.distributed import DistContext, launch, local_batch

        local_batch(options["batch_size"], DistContext(0, nproc_per_node, 0, "gloo"))  # refuse before starting
        sys.exit(launch(nproc_per_node, _without_option(sys.argv[2:], "--nproc-per-node")))
    from edgeae.data import parse_resize
    from edgeae.train import train

    main_rank = os.environ.get("RANK", "0") == "0"
    bar = _TrainingBar() if sys.stderr.isatty() and main_rank else None
    try:
        result = train(model=model_kind, resize=parse_resize(resize), progress=bar,
                       log=lambda m: click.echo(m, err=True), **options)
    finally:
        if bar is not None:
            bar.close()
    m = result.metrics
    if not main_rank:
        return
    if result.interrupted:
        click.echo(f"Interrupted after epoch {m['epochs_run']}: the best checkpoint (epoch {m['best_epoch']}) "
                   f"is in {result.run_dir}; continue with --resume --out {result.run_dir}", err=True)
    line = f"validation PSNR {m['val_psnr']:.2f} dB, MSE {m['val_mse']:.5f}"
    if "val_elbo" in m:
        line += f", ELBO {m['val_elbo']:.2f}"
    if "val_psnr_noisy" in m:
        line += f" (noisy input {m['val_psnr_noisy']:.2f} dB)"
    click.echo(f"Trained {result.config.model.kind} in {m['seconds']:.1f} s ({m['epochs_run']} epochs): {line}")
    click.echo(f"Run folder: {result.run_dir}  (next: edgeae export {result.run_dir} -o bundles/{result.run_dir.name})")
    if result.interrupted:
        sys.exit(130)


def _without_option(args: list[str], name: str) -> list[str]:
    """``args`` less ``name VALUE`` / ``name=VALUE`` (the launcher's own option)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


class _TrainingBar:
    """click's progress bar driven by :func:`edgeae.train.train`'s per-batch progress callback."""

    def __init__(self) -> None:
        self._bar = None

    def __call__(self, p) -> None:  # p: edgeae.train.TrainProgress
        if self._bar is None:
            self._bar = click.progressbar(length=p.total, label="training", file=sys.stderr, show_eta=True,
                                          item_show_func=lambda s: s, width=24)
            self._bar.__enter__()
        self._bar.update(1, f"epoch {p.epoch}/{p.epochs} loss {p.loss:.4g} val {p.best_val:.4g}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@cli.command("sample")
@click.argument("run_dir", type=click.Path())
@click.option("-n", "count", type=click.IntRange(1, 1024), default=64, show_default=True)
@click.option("-o", "--output", default="samples.png", show_default=True, help="PNG grid to write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing PNG file.")
def sample_cmd(run_dir: str, count: int, output: str, seed: int, overwrite: bool) -> None:
    """Decode samples: prior draws for a VAE, interpolations between real codes otherwise."""
    from edgeae.outputs import check_file
    from edgeae.sampling import sample_grid

    check_file(output, overwrite)
    path, how = sample_grid(run_dir, count, output, seed=seed)
    click.echo(f"Wrote {count} {how} to {path}")


# ---- runtime: encode / decode / reconstruct / info (base install only: no torch, no onnx) ----


def _runtime_options(f):
    """--precision / --provider / --threads / --batch-size / --format / --overwrite, shared by the runtime commands."""
    f = click.option("--overwrite", is_flag=True,
                     help="Replace an existing output file, or a PNG folder written earlier (docs/outputs.md).")(f)
    f = click.option("--format", "graph_format", type=click.Choice(["onnx", "ort"]), default="onnx",
                     show_default=True, help="Graph files to run (ort = ORT flatbuffer copies).")(f)
    f = click.option("--batch-size", type=click.IntRange(1), default=4096, show_default=True,
                     help="Samples per onnxruntime call; memory use grows with it.")(f)
    f = click.option("--threads", type=click.IntRange(0), default=None,
                     help="Intra-op threads (default 1: lowest batch-1 latency; 0 = all cores).")(f)
    f = click.option("--provider", default="auto", show_default=True,
                     help="auto (CUDA if available, else CPU), cpu, cuda, coreml, ... or an ORT provider name.")(f)
    f = click.option("--precision", default="fp32", show_default=True,
                     help="Graph precision in the bundle: fp32, fp16, int8-dynamic, int8-static (int8 = int8-static).")(f)
    return f


def _with_progress(fn, label: str, total: int | None = None, batch_size: int = 0):
    """Call ``fn(progress)``, with a progress bar on a terminal: of ``total`` samples when known (shown
    only when they take more than one batch of ``batch_size``), else a running count."""
    if not sys.stderr.isatty() or (total is not None and total <= batch_size):
        return fn(None)
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=total is None) as bar:
        return fn(bar.update)


def _window_options(f):
    """--window / --hop: cut signal files into a signal bundle's windows (encode, compress, reconstruct)."""
    f = click.option("--hop", type=int, default=None, metavar="STEPS",
                     help="Signals: steps between window starts [default: the window length].")(f)
    return click.option("--window", type=int, default=None, metavar="LENGTH",
                        help="Signals: cut a (T, C) recording (.csv with one column per channel, .npy) or each "
                             "case of a .ts / (N, C, T) file into windows [default with --hop: the bundle's "
                             "window length].")(f)


def _dask_option(f):
    return click.option("--dask", "dask_address", default=None, metavar="local:N|tcp://HOST:PORT",
                        help="Run the blocks on Dask: a local cluster of N one-thread workers, or a "
                             "scheduler address (needs edgeae[dask]; same output bytes). See docs/scaling.md.")(f)


@cli.command("encode")
@click.argument("bundle", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", required=True, help="Codes file to write (.npy), shape (N, code_size).")
@click.option("--resize", default=None, help="Resize images to HxW before encoding (e.g. 28x28).")
@_window_options
@_dask_option
@_runtime_options
def encode_cmd(bundle, input_path, output, resize, window, hop, dask_address, precision, provider, threads,
               batch_size, graph_format, overwrite):
    """Encode samples (.npy/.npz, IDX, image file or folder, CSV, .ts) to latent codes.

    Inputs are read block by block (a .npy is memory-mapped), so memory stays flat
    however many samples there are.

    \b
    Example: edgeae encode bundles/mnist t10k-images-idx3-ubyte.gz -o codes.npy
             edgeae encode bundles/mnist big.npy -o codes.npy --dask local:2
    """
    from edgeae.data import parse_resize
    from edgeae.outputs import check_samples_output
    from edgeae.scale.files import encode_file

    check_samples_output(output, overwrite, npy_only=True)
    _check_dask(dask_address)
    model, n, d = _with_progress(lambda p: encode_file(
        bundle, input_path, output, resize=parse_resize(resize), precision=precision, provider=provider,
        threads=threads, graph_format=graph_format, batch_size=batch_size, dask=dask_address, progress=p,
        window=window, hop=hop), "encoding")
    click.echo(f"Encoded {n} samples -> {output} {(n, d)} float32 [{model.precision}, {model.providers[0]}]")


def _check_dask(address: str | None) -> None:
    """--dask needs the dask extra; say so before any work."""
    from edgeae.scale import require_dask

    require_dask(address)




@cli.command("decode")
@click.argument("bundle", type=click.Path())
@click.argument("codes_path", metavar="CODES", type=click.Path())
@click.option("-o", "--output", required=True,
              help="OUT.npy (raw units, e.g. uint8 pixels) or a folder for PNG images.")
@_runtime_options
def decode_cmd(bundle, codes_path, output, precision, provider, threads, batch_size, graph_format, overwrite):
    """Decode latent codes (.npy, shape (N, code_size)) back to samples in raw units.

    \b
    Example: edgeae decode bundles/mnist codes.npy -o recon/
    """
    from edgeae.data import read_codes
    from edgeae.outputs import check_samples_output, write_samples
    from edgeae.runtime import load

    check_samples_output(output, overwrite)
    model = load(bundle, precision=precision, providers=provider, threads=threads, format=graph_format)
    codes = read_codes(codes_path, model.code_size)
    x = _with_progress(lambda p: model.decode(codes, batch_size=batch_size, raw=True, progress=p), "decoding",
                       len(codes), batch_size)
    click.echo(f"Decoded {len(codes)} codes -> {write_samples(x, output, model.manifest.is_image, overwrite)}")


@cli.command("reconstruct")
@click.argument("bundle", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", default=None,
              help="Also write reconstructions: OUT.npy (raw units) or a folder for PNG images.")
@click.option("--resize", default=None, help="Resize images to HxW first (e.g. 28x28).")
@_window_options
@_runtime_options
def reconstruct_cmd(bundle, input_path, output, resize, window, hop, precision, provider, threads, batch_size,
                    graph_format, overwrite):
    """Encode and decode samples; print MSE (and PSNR for [0, 1]-scaled data).

    \b
    Example: edgeae reconstruct bundles/mnist t10k-images-idx3-ubyte.gz --precision int8-dynamic
    """
    from edgeae.data import load_inputs
    from edgeae.outputs import check_samples_output, write_samples
    from edgeae.runtime import load, reconstruction_summary

    if output:
        check_samples_output(output, overwrite)

    model = load(bundle, precision=precision, providers=provider, threads=threads, format=graph_format)
    x = load_inputs(model, input_path, resize, window, hop)
    x_hat = _with_progress(lambda p: model.reconstruct(x, batch_size=batch_size, progress=p), "reconstructing",
                           len(x), batch_size)
    summary = reconstruction_summary(model.to_model_units(x), x_hat, model.manifest.normalization["mode"])
    click.echo(f"Reconstructed {summary} [{model.precision}, {model.providers[0]}]")
    if output:
        where = write_samples(model.normalizer.denormalize(x_hat), output, model.manifest.is_image, overwrite)
        click.echo(f"Wrote {where}")


@cli.command("info")
@click.argument("bundle", type=click.Path())
def info_cmd(bundle):
    """Show a bundle's graphs, precisions, sizes, opsets, I/O, validation and verify its hashes.

    Given a .eae stream instead, check every chunk and show how many samples it holds.
    """
    from edgeae.errors import BundleError
    from edgeae.runtime import describe_bundle

    if _is_stream_file(bundle):
        click.echo(_describe_stream(bundle))
        return

    text, problems = describe_bundle(bundle)
    click.echo(text)
    if problems:
        raise BundleError(f"bundle {bundle} failed verification ({len(problems)} problem(s) listed above)")


def _is_stream_file(path: str) -> bool:
    """A file starting with the .eae magic (so `info` describes a stream, not a bundle)."""
    from pathlib import Path

    from edgeae.runtime.stream import MAGIC

    p = Path(path)
    try:
        with p.open("rb") as f:
            return p.is_file() and f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _describe_stream(path: str) -> str:
    """What `info` prints for a stream: its sample count and framing, every CRC checked."""
    from edgeae.errors import StreamError
    from edgeae.runtime.stream import read_header_file

    try:
        info = read_header_file(path)
    except OSError as exc:
        raise StreamError(f"cannot read stream {path}: {exc.strerror or exc}") from None
    return (f"{path}: .eae stream version {info.version}, model id {info.model_id.hex()}, code size "
            f"{info.code_size}\n  samples: {info.samples} in {info.chunks} chunk{'s' * (info.chunks != 1)}, "
            f"{info.size} bytes ({info.payload_bytes} payload); every chunk's CRC-32 checked")


# ---- compression: latent bitstreams (base install only) -------------------------------------


@cli.command("compress")
@click.argument("bundle", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", required=True, help="Stream file to write (.eae).")
@click.option("--bits", type=click.IntRange(MIN_LATENT_BITS, MAX_LATENT_BITS), default=None,
              help="Code bit depth; the bundle must hold tables for it [default: the bundle's first].")
@click.option("--append", "append_", is_flag=True, help="Append to an existing stream instead of refusing.")
@click.option("--resize", default=None, help="Resize images to HxW first (e.g. 28x28).")
@_window_options
@_dask_option
@_runtime_options
def compress_cmd(bundle, input_path, output, bits, append_, resize, window, hop, dask_address, precision, provider,
                 threads, batch_size, graph_format, overwrite):
    """Compress samples to a latent bitstream and report bytes per sample and PSNR.

    The input is read and written block by block (one stream chunk per block), so memory
    stays flat however many samples there are.

    \b
    Example: edgeae compress bundles/mnist t10k-images-idx3-ubyte.gz -o digits.eae --bits 4
             edgeae compress bundles/mnist big.npy -o big.eae --dask tcp://scheduler:8786
             edgeae compress bundles/motions BasicMotions_TEST.ts -o motions.eae
             edgeae compress bundles/walk walk.csv --hop 100 -o walk.eae
    """
    import time
    from pathlib import Path

    from edgeae.data import parse_resize
    from edgeae.errors import ConfigError
    from edgeae.scale.files import compress_file

    out = Path(output)
    if out.exists() and out.stat().st_size > 0 and not (append_ or overwrite):
        raise ConfigError(f"{output} already exists; use --append to add samples to it, --overwrite to replace "
                          "it, or choose another -o")
    _check_dask(dask_address)
    t0 = time.perf_counter()
    _, r = _with_progress(lambda p: compress_file(
        bundle, input_path, output, bits=bits, append=append_, resize=parse_resize(resize), precision=precision,
        provider=provider, threads=threads, graph_format=graph_format, batch_size=batch_size,
        check=not append_, dask=dask_address, progress=p, window=window, hop=hop), "compressing")
    seconds = time.perf_counter() - t0
    if append_:
        click.echo(f"Appended {r['samples']} samples to {output}: it holds {r['stream_samples']} samples "
                   f"({out.stat().st_size} bytes in all)")
        return
    quality = f"PSNR {r['psnr']:.2f} dB" if "psnr" in r else f"MSE {r['mse']:.5f}"
    click.echo(f"Compressed {r['samples']} samples -> {output}: {r['bytes']} bytes, "
               f"{r['bytes_per_sample']:.2f} bytes/sample, {r['ratio']:.1f}x smaller than raw, {quality}, "
               f"{r['samples'] / max(seconds, 1e-9):.0f} samples/s (decode check included)")


@cli.command("decompress")
@click.argument("bundle", type=click.Path())
@click.argument("stream_path", metavar="STREAM", type=click.Path())
@click.option("-o", "--output", required=True, help="OUT.npy (raw units) or a folder for PNG images.")
@_runtime_options
def decompress_cmd(bundle, stream_path, output, precision, provider, threads, batch_size, graph_format,
                   overwrite):
    """Decode a latent bitstream written by `edgeae compress` (with the same bundle).

    \b
    Example: edgeae decompress bundles/mnist digits.eae -o digits/
    """
    from pathlib import Path

    from edgeae.errors import StreamError
    from edgeae.outputs import check_samples_output, write_samples
    from edgeae.runtime import load
    from edgeae.runtime.compress import decompress
    from edgeae.runtime.stream import read_header

    check_samples_output(output, overwrite)
    model = load(bundle, precision=precision, providers=provider, threads=threads, format=graph_format)
    try:
        data = Path(stream_path).read_bytes()
    except OSError as exc:
        raise StreamError(f"cannot read stream {stream_path}: {exc.strerror}") from None
    x = decompress(model, data, batch_size)
    chunks = read_header(data).chunks
    click.echo(f"Decompressed {len(x)} samples (the whole stream: {chunks} chunk{'s' * (chunks != 1)}) -> "
               f"{write_samples(x, output, model.manifest.is_image, overwrite)}")


# ---- benchmark (base install; --torch and --plot need the train extra) ---------------------


def _bench_list(text: str | None, name: str) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _bench_ints(text: str, name: str) -> list[int]:
    import os

    from edgeae.config import parse_int_list

    items = [str(os.cpu_count() or 1) if t.upper() in ("N", "ALL") else t for t in _bench_list(text, name)]
    return sorted(set(parse_int_list(",".join(items), f"--{name}")))


@cli.command("bench")
@click.argument("bundle", type=click.Path())
@click.option("--precision", default=None, help="Comma-separated precisions (int8 = int8-static) [default: all in the bundle].")
@click.option("--graph", default="encoder,decoder,end-to-end", show_default=True, help="Graphs to time.")
@click.option("--batch", default="1,8,64,256", show_default=True, help="Batch sizes.")
@click.option("--threads", default="1,N", show_default=True, help="Intra-op thread counts (N = all cores).")
@click.option("--provider", default="cpu", show_default=True, help="Execution providers: cpu, cuda, ...")
@click.option("--duration", type=float, default=1.0, show_default=True,
              help="Seconds of timed calls per cell (graph x batch x threads x provider), shared by the variants.")
@click.option("--iterations", type=click.IntRange(1), default=None,
              help="Fixed timed calls per variant and cell, split over the rounds.")
@click.option("--rounds", type=int, default=12, show_default=True,
              help="Rounds of interleaved blocks per cell (>= 6 for 95% intervals on the ratios).")
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True, help="Untimed calls first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True)
@click.option("-o", "--output", default=None, help="Write the report to this file instead of stdout.")
@click.option("--plot", default=None, help="Also draw latency vs batch and size vs PSNR to FILE.png (matplotlib).")
@click.option("--torch", "torch_run", default=None, help="Run folder of the same weights: adds a PyTorch eager baseline.")
@click.option("--data", default=None, help="Held-out samples for inputs and PSNR when the bundle has no samples.npy.")
@click.option("--max-psnr-drop", type=float, default=0.5, show_default=True,
              help="Quality budget (dB below fp32) for the recommendation.")
@click.option("--no-bare", is_flag=True, help="Skip the bare InferenceSession.run baseline.")
@click.option("--no-ceiling", is_flag=True, help="Skip the numpy matmul ceiling.")
@click.option("--no-check", is_flag=True, help="Skip the self-check (each variant alone in a timeit loop).")
@click.option("--method", type=click.Choice(["blocks", "calls"]), default="blocks", show_default=True,
              help="blocks: interleaved blocks; calls: variants alternated call by call (shows that method's bias).")
@click.option("--overwrite", is_flag=True, help="Replace an existing -o report or --plot PNG.")
@_window_options
def bench_cmd(bundle, precision, graph, batch, threads, provider, duration, iterations, rounds, warmup, fmt, output,
              plot, torch_run, data, max_psnr_drop, no_bare, no_ceiling, no_check, method, overwrite, window, hop):
    """Measure latency, throughput, memory, size and PSNR of a bundle's precisions.

    Variants run in interleaved blocks on real held-out samples, next to a bare
    onnxruntime session and (with --torch) PyTorch eager, then each alone in a timeit
    loop (the self-check). Ends with the precision to deploy per batch size: fp32 unless
    another within the quality budget is resolvably faster. See docs/performance.md.

    \b
    Examples:
      edgeae bench bundles/mnist
      edgeae bench bundles/mnist --batch 1,256 --threads 1 --format markdown -o bench.md
      edgeae bench bundles/mnist --torch runs/mnist --plot bench.png
      edgeae bench bundles/walk --data walk_test.csv --window 100 --hop 50
    """

    from edgeae.bench.harness import run_bench
    from edgeae.bench.plots import plot as draw
    from edgeae.bench.plots import require_matplotlib
    from edgeae.errors import ConfigError
    from edgeae.outputs import check_file, write_file

    for path in (output, plot):  # before minutes of timing
        if path:
            check_file(path, overwrite)
    if plot:
        require_matplotlib()
    baseline = None
    if torch_run:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("--torch needs PyTorch, which is not installed: pip install 'edgeae[train]' "
                              "(or leave out --torch)") from None
        from edgeae.bench.torch_baseline import load_torch

        baseline = load_torch(torch_run)
    samples = None
    if data is None and (window is not None or hop is not None):
        raise click.UsageError("--window / --hop cut the --data file into windows; give --data FILE")
    if data is not None:  # read here: the runtime itself stays free of the file-format loaders
        from edgeae.data import open_source, spec_for_model
        from edgeae.runtime import read_manifest

        shape = read_manifest(bundle).sample_shape
        src = open_source(str(data), shape, signal=spec_for_model(window, hop, shape))
        samples = src.read(src.n - 4096, 4096)  # the bench uses the last samples: never read a big file whole
    result = run_bench(
        bundle, precisions=_bench_list(precision, "precision"), graphs=_bench_list(graph, "graph"),
        batches=_bench_ints(batch, "batch"), threads=_bench_ints(threads, "threads"),
        providers=_bench_list(provider, "provider"), duration=duration, iterations=iterations, warmup=warmup,
        torch_model=baseline, data=samples, data_label=str(data), max_psnr_drop=max_psnr_drop, bare=not no_bare, ceiling=not no_ceiling,
        log=lambda m: click.echo(m, err=True) if sys.stderr.isatty() else None, rounds=rounds, check=not no_check,
        method=method,
    )
    text = result.render(fmt)
    if output:
        write_file(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        click.echo(f"Wrote {output} ({len(result.rows)} rows, {fmt})")
    else:
        click.echo(text, nl=False)
    if plot:
        click.echo(f"Wrote {draw(result, plot)}")


# --- export ----------------------------------------------------------------------------------


@cli.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("-o", "--out", "out_dir", required=True, help="Bundle folder to write (must be empty or new).")
@click.option("--precision", "precisions", default="fp32", show_default=True,
              help="Comma-separated: fp32, fp16, int8-dynamic, int8-static (int8 = int8-static).")
@click.option("--opset", type=int, default=None, help="ONNX opset [default: 17, broad device support; min 15].")
@click.option("--atol", type=float, default=None,
              help="Extra absolute allowance added to every derived per-element bound [default: none; the "
                   "bounds follow from each graph's numerics, see docs/export.md].")
@click.option("--raw-io", is_flag=True, help="Also write graphs that take raw samples (uint8) and return raw outputs.")
@click.option("--calibration-samples", type=int, default=512, show_default=True, help="Training samples for int8-static.")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True)
@click.option("--max-psnr-drop", type=float, default=1.0, show_default=True,
              help="Fail when a variant loses more held-out PSNR (dB) than this vs fp32.")
@click.option("--ort", is_flag=True, help="Also write .ort files and required_operators.config (mobile builds).")
@click.option("--fixed-batch", type=int, default=None, help="Also write fixed-batch variants for batch N.")
@click.option("--data", default=None, help="Where the run's dataset is now [default: the path in config.json].")
@click.option("--codec-bits", default="auto", show_default=True,
              help="Latent bit depths to build compression tables for, e.g. 4,6,8 (first = default of "
                   "`edgeae compress`); auto = 6,4,8 (or the run's --latent-bits first); none to skip.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty bundle folder.")
@click.option("--target", "targets", type=click.Choice(["onnx", "c"]), multiple=True, default=("onnx",),
              show_default=True, help="c: also write dependency-free C99 into BUNDLE/c (see `edgeae codegen`).")
def export_cmd(run_dir: str, out_dir: str, targets: tuple[str, ...], **options) -> None:
    """Export a run folder to an ONNX bundle, checked against PyTorch on held-out samples.

    \b
    Examples:
      edgeae export runs/digits -o bundles/digits
      edgeae export runs/mnist -o bundles/mnist --precision fp32,int8,fp16 --ort
    """
    from edgeae.export import export

    result = export(run_dir, out_dir, **options)
    click.echo(result.table())
    click.echo("tightest criterion per graph (share of its bound used; margin = bound / error):")
    for p, rec in result.validation.items():
        for graph, t in (rec.get("criteria") or {}).items():
            margin = "exact" if t["margin"] is None else f"margin x{t['margin']:.3g}"
            click.echo(f"  {graph:<32}{t['what']} vs {t['against']} ({t['output']}, batch {t['batch']}): "
                       f"{t['share']:.3g} used, {margin}")
        for graph, t in (rec.get("weights_criterion") or {}).items():
            click.echo(f"  {graph:<32}{t['what']}: largest {t['largest_steps']:.3g} steps, {t['share']:.3g} used")
        pc = rec.get("psnr_criterion")
        if pc and p != "fp32":
            click.echo(f"  {p + ' end to end':<32}held-out PSNR drop {rec['psnr_drop']:.3f} dB of "
                       f"{options['max_psnr_drop']:g} allowed: {pc['share']:.3g} used, margin {pc['margin_db']:.3f} dB")
    codec = result.validation.get("fp32", {}).get("codec") or {}
    for bits, r in codec.items():
        click.echo(f"compression {bits}-bit: {r['bytes_per_sample']:.1f} bytes/sample, PSNR {r['psnr']:.2f} dB "
                   f"({r['samples']} held-out samples, all framing included)")
    click.echo(f"Bundle: {result.bundle_dir}  (next: edgeae info {result.bundle_dir}; edgeae bench {result.bundle_dir})")
    if "c" in targets:
        from pathlib import Path

        from edgeae.codegen import generate_c

        code = generate_c(result.bundle_dir, Path(result.bundle_dir) / "c", overwrite=True)
        click.echo(code.table())
        click.echo(f"C sources: {code.out_dir}")


@cli.command("codegen")
@click.argument("bundle", type=click.Path())
@click.option("-o", "--out", "out_dir", required=True, help="Folder for the .h/.c files (must be empty or new).")
@click.option("--precision", "precisions", default=None,
              help="Comma-separated: fp32, int8-static (int8 = int8-static) [default: those the bundle has].")
@click.option("--prefix", default="model", show_default=True,
              help="Prefix of every C symbol and file name (not eae, the C codec's own).")
@click.option("--io", type=click.Choice(["auto", "raw", "model"]), default="auto", show_default=True,
              help="raw: uint8 pixels in/out (bundles exported with --raw-io); model: float model units.")
@click.option("--no-verify", is_flag=True, help="Skip compiling and checking on the held-out samples.")
@click.option("--codec/--no-codec", "codec", default=None,
              help="Also write the C .eae codec and PREFIX_compress_* (samples -> stream bytes in one call) "
                   "[default: when the bundle has codec tables].")
@click.option("--overwrite", is_flag=True, help="Replace a folder written earlier by edgeae codegen.")
def codegen_cmd(bundle: str, out_dir: str, precisions: str | None, prefix: str, io: str, no_verify: bool,
                codec: bool | None, overwrite: bool) -> None:
    """Generate dependency-free C99 (one .h/.c per graph and precision) from a bundle.

    Every file is compiled with -Werror as C99 and C++17 and run on the bundle's held-out
    samples: fp32 against ONNX Runtime, int8 bit-exact against the integer reference.
    A failed check writes nothing. Needs gcc/g++ and the onnx package, never torch.
    With codec tables in the bundle it also writes the C `.eae` codec and
    PREFIX_compress_fp32/_int8 (raw samples -> stream bytes), checked byte for byte
    against Python's streams.

    \b
    Examples:
      edgeae codegen bundles/digits -o c/digits
      edgeae codegen bundles/mnist -o c/mnist --precision int8 --prefix mnist_ae
    """
    from edgeae.codegen import generate_c

    result = generate_c(bundle, out_dir, precisions=precisions, prefix=prefix, io=io, verify=not no_verify,
                        overwrite=overwrite, codec=codec)
    click.echo(result.table())
    click.echo(f"C sources: {result.out_dir} (see the top comment of each .h; docs/embedded.md)")


# ---- the browser page (base install) ------------------------------------------------------


@cli.command("web")
@click.argument("bundle", type=click.Path())
@click.option("-o", "--output", required=True, help="Site folder to write (index.html, the page's .mjs modules, graphs, site.json).")
@click.option("--precision", default="fp32", show_default=True,
              help="Graph precisions the page offers, e.g. fp32,int8 or fp16 (first = default; int8 = int8-static).")
@click.option("--ort-web", type=click.Path(), default=None,
              help="dist/ folder of an npm onnxruntime-web: copy its WASM build so the page works offline "
                   "[default: load it from a public CDN].")
@click.option("--samples", type=click.IntRange(0, 1024), default=24, show_default=True,
              help="Held-out samples of the bundle to put on the page.")
@click.option("--title", default=None, help="Name the page shows [default: the bundle folder's name].")
@click.option("--check", is_flag=True,
              help="Open the site in headless Chromium (needs chromium + pip install playwright) and compare "
                   "its codes and .eae bytes with the Python runtime.")
@click.option("--overwrite", is_flag=True, help="Replace a site folder written earlier by edgeae web.")
def web_cmd(bundle, output, precision, ort_web, samples, title, check, overwrite):
    """Write a static page that encodes on the device (phone or desktop) with onnxruntime-web.

    \b
    Example:
      edgeae web bundles/digits -o site --ort-web node_modules/onnxruntime-web/dist
      python -m http.server -d site 8000     # then open http://localhost:8000
    """
    from edgeae.web import build_site

    r = build_site(bundle, output, precisions=precision, ort_web=ort_web, samples=samples, overwrite=overwrite,
                   check=check, title=title)
    ort = "copied into the site" if r.ort_source == "local" else f"loaded from {r.ort_url}"
    click.echo(f"Site: {r.out}  ({len(r.files)} files; page {r.page_bytes / 1024:.0f} KiB without "
               f"onnxruntime-web, {r.total_bytes / 1e6:.1f} MB in all)")
    click.echo(f"precisions {', '.join(r.precisions)}; codec bits {', '.join(map(str, r.bits)) or 'none'}; "
               f"{r.samples} held-out samples; onnxruntime-web {r.ort_version} {ort}")
    for note in r.notes:
        click.echo(f"Note: {note}")
    for p, c in (r.check or {}).get("precisions", {}).items():
        moved = (f" ({c['eae_moved']} quantize to other symbols, from codes that differ within the tolerance)"
                 if c["eae_moved"] else "")
        click.echo(f"Checked in Chromium {r.check['chromium']}: {p} codes within {c['max_code_diff']:.1e} of the "
                   f"Python runtime (allowed {c['code_tol']:.1e}) on {c['samples']} held-out samples; .eae bytes "
                   f"identical in {c['eae_equal']} of {c['eae_total']} streams{moved}")
    click.echo(f"Serve it: python -m http.server -d {r.out} 8000   (then open http://localhost:8000)")
