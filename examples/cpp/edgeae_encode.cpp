// edgeae_encode: a bundle's encoder on ONNX Runtime's C++ API + the C `.eae` codec.
//
//   raw images (PGM or .npy) -> [normalize, unless the graph takes raw uint8] -> encoder.onnx
//   -> codes (N, D) float32 -> codes .npy and/or a .eae stream (the C codec, generated for
//      the same bundle by edgeae.codegen.codec.write_codec with prefix "model")
//
// Everything about the model comes from the graph's edgeae.* metadata_props (role, code
// size, input shape, normalization, raw I/O); nothing is read from manifest.json.
// The stream decodes with `edgeae decompress BUNDLE STREAM -o OUT`.
//
// Usage:
//   edgeae_encode ENCODER.onnx INPUT [INPUT ...] [-c CODES.npy] [-s STREAM.eae] [--append]
//                 [--bits B] [--threads T] [--bench SECONDS]
// INPUT: binary PGM (P5) images of the sample's H x W, or one .npy of shape (N, *sample)
// (uint8 raw pixels, or float32: normalized inputs, or raw values for standardize bundles).
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "eae_codec.h"
#include "model_codec.h"  // model_codecs[], MODEL_CODEC_COUNT: the bundle's codec tables

namespace {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------ metadata_props
std::string meta(const Ort::ModelMetadata& md, const char* key, bool required = true) {
    Ort::AllocatorWithDefaultOptions alloc;
    auto v = md.LookupCustomMetadataMapAllocated(key, alloc);
    if (!v) {
        if (required)
            throw Error(std::string("the graph has no ") + key +
                        " metadata; use an encoder exported by edgeae (edgeae export)");
        return "";
    }
    return v.get();
}

// The numbers of a JSON array (the only JSON shapes edgeae.* values use: flat lists).
std::vector<double> json_numbers(const std::string& text, size_t from = 0) {
    std::vector<double> out;
    size_t a = text.find('[', from), b = text.find(']', a);
    if (a == std::string::npos || b == std::string::npos) throw Error("malformed metadata list: " + text);
    std::string body = text.substr(a + 1, b - a - 1);
    const char* p = body.c_str();
    while (*p) {
        char* end;
        double v = std::strtod(p, &end);
        if (end == p) {
            ++p;
            continue;
        }
        out.push_back(v);
        p = end;
    }
    return out;
}

std::string json_string(const std::string& text, const std::string& key) {
    size_t k = text.find("\"" + key + "\"");
    if (k == std::string::npos) throw Error("metadata lacks \"" + key + "\": " + text);
    size_t a = text.find('"', text.find(':', k) + 1), b = text.find('"', a + 1);
    return text.substr(a + 1, b - a - 1);
}

std::vector<double> json_list(const std::string& text, const std::string& key) {
    size_t k = text.find("\"" + key + "\"");
    if (k == std::string::npos) throw Error("metadata lacks \"" + key + "\": " + text);
    size_t colon = text.find(':', k);
    size_t first = text.find_first_not_of(" ", colon + 1);
    if (text[first] == '[') return json_numbers(text, first);
    return {std::strtod(text.c_str() + first, nullptr)};  // a single number
}

// What edgeae.runtime.preprocess.Normalizer does, in float32: (float(raw) - offset) * (1 / scale).
struct Normalizer {
    std::string mode;
    std::vector<float> offset, inv_scale;
    bool identity = false, has_offset = false;

    Normalizer(const std::string& record, size_t sample_size) {
        mode = json_string(record, "mode");
        for (double v : json_list(record, "offset")) offset.push_back(static_cast<float>(v));
        for (double v : json_list(record, "scale")) inv_scale.push_back(1.0f / static_cast<float>(v));
        if (offset.size() != inv_scale.size() || (offset.size() != 1 && offset.size() != sample_size))
            throw Error("normalization offset/scale do not fit the sample size");
        identity = mode == "identity" || (offset.size() == 1 && offset[0] == 0.0f && inv_scale[0] == 1.0f);
        for (float o : offset) has_offset = has_offset || o != 0.0f;
    }

    void apply(float* x, size_t n, size_t sample_size) const {
        if (identity) return;
        for (size_t i = 0; i < n; ++i) {
            size_t k = offset.size() == 1 ? 0 : i % sample_size;
            float y = x[i];
            if (has_offset) y -= offset[k];
            y *= inv_scale[k];
            x[i] = y;
        }
    }
};

// ------------------------------------------------------------------------- inputs
struct Samples {
    std::vector<uint8_t> u8;  // raw pixels, or
    std::vector<float> f32;   // floats
    size_t count = 0;
};

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read " + path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// Binary PGM (P5), 8-bit.
void read_pgm(const std::string& path, size_t sample_size, Samples& out) {
    std::string data = read_all(path);
    std::istringstream s(data);
    std::string magic;
    size_t w = 0, h = 0, maxval = 0;
    s >> magic;
    auto skip = [&]() {  // whitespace and # comments between header fields
        while (s && (std::isspace(s.peek()) || s.peek() == '#'))
            if (s.get() == '#') s.ignore(1 << 20, '\n');
    };
    skip(); s >> w; skip(); s >> h; skip(); s >> maxval;
    if (magic != "P5" || !s || maxval == 0 || maxval > 255)
        throw Error(path + " is not an 8-bit binary PGM (P5); convert it, e.g. with ImageMagick");
    s.get();  // the single whitespace after maxval
    size_t at = static_cast<size_t>(s.tellg());
    if (w * h != sample_size)
        throw Error(path + " is " + std::to_string(w) + "x" + std::to_string(h) + " but the encoder takes " +
                    std::to_string(sample_size) + " pixels per sample; resize it");
    if (data.size() < at + w * h) throw Error(path + " is truncated");
    out.u8.insert(out.u8.end(), data.begin() + at, data.begin() + at + w * h);
    out.count++;
}

// .npy version 1/2/3, C order, |u1 or <f4.
void read_npy(const std::string& path, size_t sample_size, Samples& out) {
    std::string data = read_all(path);
    if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + " is not a .npy file");
    size_t hlen = data[6] == 1 ? (uint8_t)data[8] | (uint8_t)data[9] << 8
                               : (uint8_t)data[8] | (uint8_t)data[9] << 8 | (uint8_t)data[10] << 16 |
                                     (size_t)(uint8_t)data[11] << 24;
    size_t start = data[6] == 1 ? 10 : 12;
    if (data.size() < start + hlen) throw Error(path + " has a truncated header");
    std::string header = data.substr(start, hlen);
    std::replace(header.begin(), header.end(), '\'', '"');  // a Python dict literal -> JSON-ish
    std::string descr = json_string(header, "descr");
    if (header.find("\"fortran_order\": True") != std::string::npos) throw Error(path + " is Fortran-ordered");
    size_t total = 1;
    size_t lp = header.find('('), rp = header.find(')');
    std::istringstream dims(header.substr(lp + 1, rp - lp - 1));
    std::string tok;
    while (std::getline(dims, tok, ','))
        if (tok.find_first_not_of(" ") != std::string::npos) total *= std::stoull(tok);
    const char* body = data.data() + start + hlen;
    size_t bytes = data.size() - start - hlen;
    if (total % sample_size) throw Error(path + " holds " + std::to_string(total) + " values, not a multiple of " +
                                         std::to_string(sample_size) + " per sample");
    if (descr == "|u1") {
        if (bytes < total) throw Error(path + " is truncated");
        if (!out.f32.empty()) throw Error("mixed uint8 and float32 inputs");
        out.u8.insert(out.u8.end(), body, body + total);
    } else if (descr == "<f4") {
        if (bytes < total * 4) throw Error(path + " is truncated");
        if (!out.u8.empty()) throw Error("mixed uint8 and float32 inputs");
        size_t at = out.f32.size();
        out.f32.resize(at + total);
        std::memcpy(out.f32.data() + at, body, total * 4);
    } else {
        throw Error(path + " has dtype " + descr + "; use uint8 pixels or float32 (x.astype(np.float32))");
    }
    out.count += total / sample_size;
}

void write_npy(const std::string& path, const float* data, size_t n, size_t d) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", " +
                         std::to_string(d) + "), }";
    header += std::string(63 - (10 + header.size()) % 64, ' ') + "\n";
    std::ofstream f(path, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    uint16_t len = static_cast<uint16_t>(header.size());
    f.put(static_cast<char>(len & 0xFF));
    f.put(static_cast<char>(len >> 8));
    f << header;
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * d * 4));
    if (!f) throw Error("cannot write " + path);
}

// ----------------------------------------------------------------------- the model
struct Encoder {
    Ort::Session session;
    std::string in_name, out_name;
    bool raw_io;
    std::vector<int64_t> sample_shape;
    size_t sample_size = 1, code_size;
    std::string raw_dtype;
    Normalizer norm;

    static Ort::SessionOptions options(int threads) {
        Ort::SessionOptions o;  // edgeae.runtime.session's defaults
        o.SetIntraOpNumThreads(threads);
        o.SetInterOpNumThreads(1);
        o.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
        o.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
        o.AddConfigEntry("session.intra_op.allow_spinning", "0");
        o.AddConfigEntry("session.inter_op.allow_spinning", "0");
#if defined(__aarch64__) || defined(_M_ARM64)
        // ARM64's fused MatMulIntegerToFloat rounds scale * acc + bias once (FMA), x86 twice:
        // unfused, int8-dynamic codes are x86's bits (as edgeae.runtime.session does)
        o.AddConfigEntry("optimization.disable_specified_optimizers", "MatMulIntegerToFloatFusion");
        // on SME CPUs Arm's KleidiAI fp32 kernels sum in another order: 3.2e-5 from x86's
        // codes, against 0 with MLAS's own kernels (emulated `max`)
        o.AddConfigEntry("mlas.disable_kleidiai", "1");
#endif
        return o;
    }

    static size_t product(const std::vector<double>& dims) {
        size_t n = 1;
        for (double v : dims) n *= static_cast<size_t>(v);
        return n;
    }

    Encoder(Ort::Env& env, const std::string& path, int threads)
        : session(env, path.c_str(), options(threads)),
          norm(meta(session.GetModelMetadata(), "edgeae.normalization"),
               product(json_numbers(meta(session.GetModelMetadata(), "edgeae.input_shape")))) {
        Ort::ModelMetadata md = session.GetModelMetadata();
        if (meta(md, "edgeae.role") != "encoder") throw Error(path + " is not an encoder graph (edgeae.role)");
        for (double v : json_numbers(meta(md, "edgeae.input_shape"))) {
            sample_shape.push_back(static_cast<int64_t>(v));
            sample_size *= static_cast<size_t>(v);
        }
        code_size = std::stoul(meta(md, "edgeae.code_size"));
        raw_io = meta(md, "edgeae.raw_io") == "true";
        raw_dtype = json_string(meta(md, "edgeae.normalization"), "raw_dtype");
        Ort::AllocatorWithDefaultOptions alloc;
        in_name = session.GetInputNameAllocated(0, alloc).get();
        auto in_type = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType();
        if (raw_io != (in_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8))
            throw Error(path + ": edgeae.raw_io disagrees with the input dtype");
        for (size_t i = 0; i < session.GetOutputCount(); ++i)
            if (std::string(session.GetOutputNameAllocated(i, alloc).get()) == "code") out_name = "code";
        if (out_name.empty()) throw Error(path + " has no output named 'code'");
    }

    // Mirrors EdgeModel.encode: uint8 pixels go in raw (raw-I/O graphs) or normalized;
    // float32 goes in as given, except for standardize bundles (floats are raw values).
    std::vector<float> encode(const Samples& s, size_t first, size_t n) {
        auto mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
        std::vector<int64_t> shape{static_cast<int64_t>(n)};
        shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
        size_t count = n * sample_size;
        std::vector<float> feed;
        std::vector<uint8_t> raw;
        Ort::Value x{nullptr};
        if (raw_io) {
            if (s.u8.empty()) throw Error("this encoder takes raw uint8 pixels; pass PGM or uint8 .npy input");
            raw.assign(s.u8.begin() + first * sample_size, s.u8.begin() + first * sample_size + count);
            x = Ort::Value::CreateTensor<uint8_t>(mem, raw.data(), count, shape.data(), shape.size());
        } else {
            if (!s.u8.empty()) {
                feed.assign(s.u8.begin() + first * sample_size, s.u8.begin() + first * sample_size + count);
                norm.apply(feed.data(), count, sample_size);
            } else {
                feed.assign(s.f32.begin() + first * sample_size, s.f32.begin() + first * sample_size + count);
                if (norm.mode == "standardize") norm.apply(feed.data(), count, sample_size);
            }
            x = Ort::Value::CreateTensor<float>(mem, feed.data(), count, shape.data(), shape.size());
        }
        const char* in[] = {in_name.c_str()};
        const char* out[] = {out_name.c_str()};
        auto y = session.Run(Ort::RunOptions{nullptr}, in, &x, 1, out, 1);
        const float* code = y[0].GetTensorData<float>();
        return std::vector<float>(code, code + n * code_size);
    }
};

// ------------------------------------------------------------------------ the codec
const eae_codec* pick_codec(int bits, size_t code_size) {
    const eae_codec* c = model_codecs[0];
    if (bits) {
        c = nullptr;
        for (size_t k = 0; k < MODEL_CODEC_COUNT; ++k)
            if (model_codecs[k]->bits == bits) c = model_codecs[k];
        if (!c) throw Error("no codec tables for --bits " + std::to_string(bits) + " were built into this program");
    }
    if (c->code_size != code_size)
        throw Error("the built-in codec tables are for code size " + std::to_string(c->code_size) + ", the encoder's is " +
                    std::to_string(code_size) + "; rebuild with the tables of this bundle");
    return c;
}

void check(int status, const std::string& what) {
    if (status != EAE_OK) throw Error(what + ": " + eae_strerror(status));
}

void write_stream(const std::string& path, const eae_codec* c, const std::vector<float>& codes, size_t n, bool append) {
    std::string old;
    if (append) {
        std::ifstream f(path, std::ios::binary);
        if (f) old = read_all(path);
    }
    std::vector<uint8_t> buf(eae_bound(c, n));
    size_t pos = 0, w = 0;
    eae_writer wr;
    if (old.empty()) {
        check(eae_writer_begin(&wr, c, buf.data(), buf.size(), &pos), "stream header");
    } else {
        eae_info info;
        check(eae_read_header(reinterpret_cast<const uint8_t*>(old.data()), old.size(), &info), path);
        check(eae_writer_resume(&wr, c, reinterpret_cast<const uint8_t*>(old.data()), old.size()), path);
    }
    check(eae_writer_append(&wr, codes.data(), n, buf.data() + pos, buf.size() - pos, &w), "compress");
    std::ofstream f(path, old.empty() ? std::ios::binary : std::ios::binary | std::ios::app);
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(pos + w));
    if (!f) throw Error("cannot write " + path);
}

// Batch 1, one sample after another: encoder run + a whole one-sample stream each,
// whole passes over the samples (bytes/sample is their exact mean).
void bench(Encoder& enc, const Samples& s, const eae_codec* c, double seconds) {
    std::vector<double> lat;
    std::vector<uint8_t> buf(eae_bound(c, 1));
    size_t bytes = 0, w;
    auto now = [] { return std::chrono::steady_clock::now(); };
    for (size_t i = 0; i < std::min<size_t>(s.count, 20); ++i) enc.encode(s, i, 1);  // warm-up
    auto end = now() + std::chrono::duration<double>(seconds);
    for (size_t i = 0; now() < end || i % s.count; ++i) {  // whole passes over the samples
        auto t0 = now();
        std::vector<float> code = enc.encode(s, i % s.count, 1);
        check(eae_compress(c, code.data(), 1, buf.data(), buf.size(), &w), "compress");
        lat.push_back(std::chrono::duration<double>(now() - t0).count());
        bytes += w;
    }
    double total = 0;
    for (double v : lat) total += v;
    std::sort(lat.begin(), lat.end());
    std::printf("{\"calls\": %zu, \"samples_per_s\": %.1f, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, "
                "\"bytes_per_sample\": %.4f}\n",
                lat.size(), lat.size() / total, 1e6 * lat[lat.size() / 2], 1e6 * lat[lat.size() * 9 / 10],
                1e6 * lat[lat.size() * 99 / 100], double(bytes) / lat.size());
}

int run(int argc, char** argv) {
    std::vector<std::string> inputs;
    std::string model, codes_out, stream_out;
    int bits = 0, threads = 1;
    bool append = false;
    double bench_s = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw Error(a + " needs a value");
            return argv[++i];
        };
        if (a == "-c" || a == "--codes") codes_out = next();
        else if (a == "-s" || a == "--stream") stream_out = next();
        else if (a == "--bits") bits = std::stoi(next());
        else if (a == "--threads") threads = std::stoi(next());
        else if (a == "--append") append = true;
        else if (a == "--bench") bench_s = std::stod(next());
        else if (a == "-h" || a == "--help") {
            std::puts("usage: edgeae_encode ENCODER.onnx INPUT... [-c CODES.npy] [-s STREAM.eae] [--append]\n"
                      "                     [--bits B] [--threads T] [--bench SECONDS]");
            return 0;
        } else if (model.empty()) model = a;
        else inputs.push_back(a);
    }
    if (model.empty() || inputs.empty()) throw Error("give an encoder .onnx and at least one input (see --help)");
    if (codes_out.empty() && stream_out.empty() && bench_s <= 0) throw Error("nothing to write; pass -c and/or -s");

    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "edgeae");
    Encoder enc(env, model, threads);
    Samples s;
    for (const auto& path : inputs) {
        std::string ext = path.size() > 4 ? path.substr(path.size() - 4) : "";
        if (ext == ".npy") read_npy(path, enc.sample_size, s);
        else read_pgm(path, enc.sample_size, s);
    }
    if (s.count == 0) throw Error("the inputs hold no samples");
    const eae_codec* c = pick_codec(bits, enc.code_size);
    if (bench_s > 0) {
        bench(enc, s, c, bench_s);
        return 0;
    }
    std::vector<float> codes = enc.encode(s, 0, s.count);
    if (!codes_out.empty()) write_npy(codes_out, codes.data(), s.count, enc.code_size);
    if (!stream_out.empty()) write_stream(stream_out, c, codes, s.count, append);
    std::fprintf(stderr, "encoded %zu samples -> codes (%zu, %zu)%s%s\n", s.count, s.count, enc.code_size,
                 stream_out.empty() ? "" : ", stream ", stream_out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Ort::Exception& e) {
        std::fprintf(stderr, "Error: ONNX Runtime: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
    }
    return 1;
}
