// Batched PNG decoding for the image datasets (pydlr::decode_png_batch): a list of files decoded in one call
// into one uint8 buffer, each image at its own size in the requested number of channels.
//
// Why native: per file, Python around Pillow's C decoder (open, chunk walk, Image.frombytes, array conversion)
// cost more CPU than the decoding of a small image itself; here a whole batch costs one call.
//
// Two decoders, the same pixels. The common file (8-bit grey, grey+alpha, RGB or RGBA, not interlaced, no
// palette, no tRNS chunk, one zlib stream that ends exactly where the image does) goes through a short direct
// path: the file read with one read() into a buffer reused for the batch, its chunks walked in memory, the
// IDAT data inflated in one call (libdeflate where built with it, else zlib) and the rows unfiltered here.
// libpng inflates a row at a time (29-byte outputs for a 28-pixel grey row, below the size where zlib takes its
// fast loop) and creates its structures per file: measured on 28 x 28 grey PNGs (2026-12-05, one core), 10 us
// an image of decoding against 4.5 (libdeflate) or 6.5 (zlib) here, and fopen/fread cost 1 us more than
// open/read. Everything the direct path does not take, and every file where anything in it looks unusual
// (a bad header CRC, a zlib error, too little or too much image data, an unknown filter
// type, an unknown critical chunk), goes to libpng from the same bytes, which decodes it or reports the error
// exactly as before: the direct path never reports a file bad on its own.
//
// Only the cases whose pixels are known to equal Pillow's are decoded here at all: 8-bit grey, grey+alpha, RGB
// and RGBA, interlaced or not (interlaced ones by libpng), without a tRNS chunk, and not larger than Pillow's
// decompression-bomb limit. Everything else (palettes, 16-bit or 1/2/4-bit samples, transparency chunks, files
// that are not PNGs) and every file libpng reports an error for (corrupt, truncated, bad CRC) comes back with
// a non-empty message, and the caller decodes that file with Pillow, which decodes it or names the problem
// exactly as it does without this op.
// Colour conversions follow Pillow's: grey -> RGB repeats the sample, alpha is added as 255 or dropped, and
// RGB -> grey is ITU-R 601-2 luma with Pillow's integer weights and rounding (L24 in Pillow's Convert.c).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#ifdef PYDLR_WITH_LIBPNG
#include <fcntl.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PYDLR_WARP_AVX2 1
#endif
#ifdef PYDLR_WITH_LIBDEFLATE
#include <libdeflate.h>
#endif
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace pydlr {

#ifdef PYDLR_WITH_LIBPNG
namespace {

// Pillow refuses images over twice Image.MAX_IMAGE_PIXELS (89,478,485) and warns above it: such files go to
// Pillow, so its decompression-bomb warning and error stay what users see.
constexpr uint64_t kMaxPixels = 89478485;
// The direct path holds a whole image's inflated rows besides its pixels: up to 64 MiB of them.
constexpr size_t kMaxDirectBytes = size_t{64} << 20;
// Below this many files a batch is decoded on the calling thread (waking another costs more than it saves).
constexpr int64_t kFilesPerTask = 8;

// Pillow's L24: (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16.
void rgb_to_grey(const uint8_t* src, int step, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i, src += step) {
    dst[i] = static_cast<uint8_t>((src[0] * 19595u + src[1] * 38470u + src[2] * 7471u + 0x8000u) >> 16);
  }
}

// ----- reading a file ------------------------------------------------------------------------------------

// The whole file into buf (grown as needed, reused across the batch); false when it cannot be opened or read.
// A read shorter than asked is taken as the end of the file (regular files): were it not, the PNG would look
// truncated, libpng would report it, and Pillow would decode the file from scratch, so a short read can cost
// time but never change pixels.
bool read_file(const char* path, std::vector<uint8_t>& buf, size_t& size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  if (buf.size() < (64u << 10)) buf.resize(64u << 10);
  size = 0;
  bool ok = true;
  for (;;) {
    const ssize_t got = ::read(fd, buf.data() + size, buf.size() - size);
    if (got < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    size += static_cast<size_t>(got);
    if (size < buf.size()) break;
    buf.resize(buf.size() * 2);
  }
  ::close(fd);
  return ok;
}

// ----- the direct path for plain PNGs --------------------------------------------------------------------

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool chunk_is(const uint8_t* type, const char* name) { return std::memcmp(type, name, 4) == 0; }

bool is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// What the direct path reuses from file to file of a batch.
struct Scratch {
  std::vector<uint8_t> file;  // the file's bytes
  std::vector<uint8_t> idat;  // the IDAT data when it spans several chunks
  std::vector<uint8_t> raw;   // inflated rows, each a filter byte then the row
  std::vector<uint8_t> zeros;  // the row above the first one, as PNG's filters read it
#ifdef PYDLR_WITH_LIBDEFLATE
  libdeflate_decompressor* inflater = nullptr;
#else
  z_stream z{};
  bool z_ready = false;
#endif
  std::vector<uint8_t> pixels;  // one decoded image (the fused decode-and-warp path)
  std::vector<float> plane;     // the same as floats, less the constant fill
  // Buffers grown for one unusually large image are given back rather than kept by the thread for good.
  void trim() {
    constexpr size_t kKeep = size_t{4} << 20;
    for (auto* v : {&file, &idat, &raw, &zeros, &pixels}) {
      if (v->capacity() > kKeep) std::vector<uint8_t>().swap(*v);
    }
    if (plane.capacity() * sizeof(float) > kKeep) std::vector<float>().swap(plane);
  }
  ~Scratch() {
#ifdef PYDLR_WITH_LIBDEFLATE
    if (inflater != nullptr) libdeflate_free_decompressor(inflater);
#else
    if (z_ready) inflateEnd(&z);
#endif
  }
};

// The header and the IDAT data of a plain PNG, found by walking the chunks in memory.
struct Plain {
  uint32_t w = 0, h = 0;
  int src = 0;  // samples per pixel in the file: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  const uint8_t* data = nullptr;  // the zlib stream (into the file, or into Scratch::idat)
  size_t size = 0;
};

bool crc_ok(const uint8_t* chunk, uint32_t len) {
  return static_cast<uint32_t>(crc32(0, chunk + 4, len + 4)) == be32(chunk + 8 + len);
}

// The chunks up to the end of the first run of IDAT chunks (libpng reads no further either). False for
// anything the direct path leaves to libpng. Ancillary chunks are skipped without their CRC: libpng, too,
// only warns about a bad one and drops it, and none of them changes the pixels decoded here (tRNS, which
// would, sends the file to libpng). IDAT chunks, too: libpng would refuse a bad IDAT CRC, and the caller would
// then hand the file to Pillow, which does not check IDAT CRCs and decodes the same zlib stream into the same
// pixels; the stream's own Adler-32 is checked by the inflater. (0.2 us of a 28 x 28 grey image's 9.)
bool walk_chunks(const uint8_t* d, size_t n, Scratch& s, Plain& p) {
  size_t pos = 8;
  int idat_chunks = 0;
  bool header = false;
  while (pos + 12 <= n) {
    const uint32_t len = be32(d + pos);
    const uint8_t* type = d + pos + 4;
    if (len > 0x7fffffffu || len > n - pos - 12) return false;  // libpng's limit; or truncated
    if (!is_letter(type[0]) || !is_letter(type[1]) || !is_letter(type[2]) || !is_letter(type[3])) return false;
    const uint8_t* body = d + pos + 8;
    const bool critical = (type[0] & 0x20) == 0;
    if (chunk_is(type, "IDAT")) {
      if (!header) return false;
      if (idat_chunks == 0) {
        p.data = body;
        p.size = len;
      } else {
        if (idat_chunks == 1) s.idat.assign(p.data, p.data + p.size);
        s.idat.insert(s.idat.end(), body, body + len);
      }
      ++idat_chunks;
    } else if (idat_chunks > 0) {
      break;
    } else if (chunk_is(type, "IHDR")) {
      if (header || pos != 8 || len != 13 || !crc_ok(d + pos, len)) return false;
      p.w = be32(body);
      p.h = be32(body + 4);
      const uint8_t depth = body[8], ctype = body[9];
      p.src = ctype == 0 ? 1 : ctype == 4 ? 2 : ctype == 2 ? 3 : ctype == 6 ? 4 : 0;
      // compression, filter method 0; not interlaced; libpng's default size limits (1,000,000 a side)
      if (p.src == 0 || depth != 8 || body[10] != 0 || body[11] != 0 || body[12] != 0 || p.w == 0 ||
          p.h == 0 || p.w > 1000000 || p.h > 1000000 || static_cast<uint64_t>(p.w) * p.h > kMaxPixels) {
        return false;
      }
      header = true;
    } else if (critical || !header || chunk_is(type, "tRNS") || len > (1u << 22)) {
      return false;  // PLTE, IEND before the image, unknown critical chunks, transparency, huge chunks
    }
    pos += 12 + size_t{len};
  }
  if (idat_chunks > 1) {
    p.data = s.idat.data();
    p.size = s.idat.size();
  }
  return idat_chunks > 0;
}

// The zlib stream into s.raw, which must come out at exactly `expected` bytes, the stream ending with the
// IDAT data. zlib gets room to spare so that its fast loop runs to the end (it needs 258 bytes of room).
bool inflate_exact(Scratch& s, const Plain& p, size_t expected) {
  constexpr size_t kSlack = 512;
  if (s.raw.size() < expected + kSlack) s.raw.resize(expected + kSlack);
#ifdef PYDLR_WITH_LIBDEFLATE
  if (s.inflater == nullptr) s.inflater = libdeflate_alloc_decompressor();
  if (s.inflater == nullptr) return false;
  size_t in_used = 0, out_made = 0;
  const auto r = libdeflate_zlib_decompress_ex(s.inflater, p.data, p.size, s.raw.data(), expected + kSlack,
                                               &in_used, &out_made);
  return r == LIBDEFLATE_SUCCESS && in_used == p.size && out_made == expected;
#else
  if (!s.z_ready) {
    if (inflateInit(&s.z) != Z_OK) return false;
    s.z_ready = true;
  } else if (inflateReset(&s.z) != Z_OK) {
    return false;
  }
  s.z.next_in = const_cast<Bytef*>(p.data);
  s.z.avail_in = static_cast<uInt>(p.size);
  s.z.next_out = s.raw.data();
  s.z.avail_out = static_cast<uInt>(expected + kSlack);
  return p.size <= 0xffffffffu && expected + kSlack <= 0xffffffffu && inflate(&s.z, Z_FINISH) == Z_STREAM_END &&
         s.z.avail_in == 0 && s.z.total_out == expected;
#endif
}

// PNG's Paeth predictor (a left, b up, c up-left): the one of a, b, c nearest to a + b - c, ties in that order.
// Written as two selects (compiled to conditional moves) rather than the specification's branches: a 1 bpp
// row is one serial chain through `a`, and mispredicted branches in it made unfiltering 1.0 us of a 28 x 28
// grey image against 0.7 (measured 2026-12-05).
uint8_t paeth(int a, int b, int c) {
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  const int near = pb < pa ? b : a, dist = pb < pa ? pb : pa;
  return static_cast<uint8_t>(pc < dist ? c : near);
}

// PNG's row filters undone: row = the filtered bytes `in` plus their predictor (row may be `in` itself; prev:
// the previous row, already unfiltered, zeros for the first row). False for a filter type PNG does not define.
bool unfilter_row(uint8_t filter, const uint8_t* in, uint8_t* row, const uint8_t* prev, size_t bytes, int bpp) {
  const size_t first = std::min(static_cast<size_t>(bpp), bytes);  // pixels with nothing to their left
  switch (filter) {
    case 0:
      if (row != in) std::memcpy(row, in, bytes);
      return true;
    case 1:
      for (size_t i = 0; i < first; ++i) row[i] = in[i];
      for (size_t i = bpp; i < bytes; ++i) row[i] = static_cast<uint8_t>(in[i] + row[i - bpp]);
      return true;
    case 2:
      for (size_t i = 0; i < bytes; ++i) row[i] = static_cast<uint8_t>(in[i] + prev[i]);
      return true;
    case 3:
      for (size_t i = 0; i < first; ++i) row[i] = static_cast<uint8_t>(in[i] + (prev[i] >> 1));
      for (size_t i = bpp; i < bytes; ++i) row[i] = static_cast<uint8_t>(in[i] + ((row[i - bpp] + prev[i]) >> 1));
      return true;
    case 4:
      for (size_t i = 0; i < first; ++i) row[i] = static_cast<uint8_t>(in[i] + prev[i]);
      for (size_t i = bpp; i < bytes; ++i) {
        row[i] = static_cast<uint8_t>(in[i] + paeth(row[i - bpp], prev[i], prev[i - bpp]));
      }
      return true;
    default:
      return false;
  }
}

// One row of `w` pixels of `src` samples into `dst` samples, with Pillow's conversions.
void convert_row(const uint8_t* in, int src, uint8_t* out, int dst, size_t w) {
  if (src == dst) {
    std::memcpy(out, in, w * dst);
  } else if (dst == 1) {
    if (src == 2) {
      for (size_t i = 0; i < w; ++i) out[i] = in[2 * i];
    } else {
      rgb_to_grey(in, src, out, w);
    }
  } else {  // dst 3 or 4
    for (size_t i = 0; i < w; ++i, in += src, out += dst) {
      const bool colour = src >= 3;
      out[0] = in[0];
      out[1] = colour ? in[1] : in[0];
      out[2] = colour ? in[2] : in[0];
      if (dst == 4) out[3] = src == 2 ? in[1] : src == 4 ? in[3] : 0xff;
    }
  }
}

// The direct path: the file's image appended to out (h * w * channels bytes), or false (out unchanged) for a
// file left to libpng.
bool decode_plain(const uint8_t* d, size_t n, int channels, Scratch& s, std::vector<uint8_t>& out,
                  int64_t dims[2]) {
  Plain p;
  if (!walk_chunks(d, n, s, p)) return false;
  const size_t bytes = static_cast<size_t>(p.w) * p.src;  // one row, without its filter byte
  // very large images go to libpng, which inflates a row at a time instead of holding the whole stream
  if ((bytes + 1) * p.h > kMaxDirectBytes) return false;
  if (!inflate_exact(s, p, (bytes + 1) * p.h)) return false;
  const size_t start = out.size();
  out.resize(start + static_cast<size_t>(p.w) * p.h * channels);
  // rows already in the wanted layout are unfiltered straight into out; others in place, then converted
  const bool direct = p.src == channels;
  s.zeros.assign(bytes, 0);
  const uint8_t* prev = s.zeros.data();
  for (uint32_t y = 0; y < p.h; ++y) {
    const uint8_t* in = s.raw.data() + y * (bytes + 1);
    uint8_t* dst = out.data() + start + static_cast<size_t>(y) * p.w * channels;
    uint8_t* row = direct ? dst : s.raw.data() + y * (bytes + 1) + 1;
    if (!unfilter_row(in[0], in + 1, row, prev, bytes, p.src)) {
      out.resize(start);
      return false;
    }
    if (!direct) convert_row(row, p.src, dst, channels, p.w);
    prev = row;
  }
  dims[0] = p.h;
  dims[1] = p.w;
  return true;
}

// ----- libpng, for everything else ----------------------------------------------------------------------

// Everything one libpng decode owns, plain data only: libpng's error path longjmps back over the decoding
// frame, which must therefore hold no object with a destructor. Released by release() on both paths.
struct Decode {
  const uint8_t* data = nullptr;  // the file's bytes
  size_t size = 0, pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_bytep* rows = nullptr;
  uint8_t* scratch = nullptr;  // RGB(A) rows before conversion to grey
  char message[256] = {0};
  jmp_buf jump;
};

void release(Decode& d) {
  if (d.png != nullptr) png_destroy_read_struct(&d.png, d.info != nullptr ? &d.info : nullptr, nullptr);
  std::free(d.rows);
  std::free(d.scratch);
  d.rows = nullptr;
  d.scratch = nullptr;
}

void on_error(png_structp png, png_const_charp msg) {
  auto* d = static_cast<Decode*>(png_get_error_ptr(png));
  std::snprintf(d->message, sizeof(d->message), "libpng: %s", msg);
  longjmp(d->jump, 1);
}

void on_warning(png_structp, png_const_charp) {}  // benign (e.g. an unknown ancillary chunk): not reported

// libpng's reads served from the file's bytes in memory; past their end, the error libpng's own stdio reader
// gives for a truncated file.
void read_memory(png_structp png, png_bytep out, size_t n) {
  auto* d = static_cast<Decode*>(png_get_io_ptr(png));
  if (n > d->size - d->pos) png_error(png, "Read Error");
  std::memcpy(out, d->data + d->pos, n);
  d->pos += n;
}

// Decodes d.data into out (grown by the image's h * w * channels bytes); dims receives (h, w). Returns false
// with d.message set when the file is not one this decoder takes or libpng reports an error.
// Kept in one function because setjmp must stay in the frame that libpng longjmps back to.
bool decode_into(Decode& d, int channels, std::vector<uint8_t>& out, int64_t dims[2]) {
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_error, on_warning);
  if (d.png == nullptr) return std::snprintf(d.message, sizeof(d.message), "libpng: out of memory"), false;
  d.info = png_create_info_struct(d.png);
  if (d.info == nullptr) return std::snprintf(d.message, sizeof(d.message), "libpng: out of memory"), false;
  if (setjmp(d.jump)) return false;  // d.message was set by on_error
  png_set_read_fn(d.png, &d, read_memory);
  d.pos = 8;  // the signature, checked by the caller
  png_set_sig_bytes(d.png, 8);
  png_read_info(d.png, d.info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, ctype = 0, interlace = 0;
  png_get_IHDR(d.png, d.info, &w, &h, &depth, &ctype, &interlace, nullptr, nullptr);
  int src = ctype == PNG_COLOR_TYPE_GRAY ? 1 : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
          : ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 0;
  if (src == 0 || depth != 8 || png_get_valid(d.png, d.info, PNG_INFO_tRNS) ||
      static_cast<uint64_t>(w) * h > kMaxPixels) {
    std::snprintf(d.message, sizeof(d.message), "not a plain 8-bit PNG (colour type %d, depth %d)", ctype, depth);
    return false;
  }
  const bool colour = src >= 3;
  const bool alpha = src == 2 || src == 4;
  int row_channels = channels;  // samples per row libpng hands back after its transforms
  if (channels == 1) {
    if (alpha) png_set_strip_alpha(d.png);
    row_channels = colour ? 3 : 1;  // RGB -> grey below, with Pillow's weights (libpng's differ)
  } else {
    if (!colour) png_set_gray_to_rgb(d.png);
    if (channels == 3 && alpha) png_set_strip_alpha(d.png);
    if (channels == 4 && !alpha) png_set_add_alpha(d.png, 0xff, PNG_FILLER_AFTER);
  }
  png_set_interlace_handling(d.png);
  png_read_update_info(d.png, d.info);
  if (png_get_rowbytes(d.png, d.info) != static_cast<size_t>(w) * row_channels) {
    std::snprintf(d.message, sizeof(d.message), "unexpected row size after libpng's transforms");
    return false;
  }
  const size_t plane = static_cast<size_t>(w) * h;
  const size_t start = out.size();
  out.resize(start + plane * channels);
  uint8_t* dst = out.data() + start;
  uint8_t* rows_base = dst;
  if (row_channels != channels) {
    d.scratch = static_cast<uint8_t*>(std::malloc(plane * row_channels));
    if (d.scratch == nullptr) return std::snprintf(d.message, sizeof(d.message), "out of memory"), false;
    rows_base = d.scratch;
  }
  d.rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * (h > 0 ? h : 1)));
  if (d.rows == nullptr) return std::snprintf(d.message, sizeof(d.message), "out of memory"), false;
  for (png_uint_32 y = 0; y < h; ++y) d.rows[y] = rows_base + static_cast<size_t>(y) * w * row_channels;
  png_read_image(d.png, d.rows);
  if (row_channels != channels) rgb_to_grey(d.scratch, row_channels, dst, plane);
  dims[0] = h;
  dims[1] = w;
  return true;
}

// One file appended to out: "" and its (h, w) in dims, or why it was not decoded (out unchanged).
std::string decode_file(const std::string& path, int channels, Scratch& s, std::vector<uint8_t>& out,
                        int64_t dims[2]) {
  size_t n = 0;
  if (!read_file(path.c_str(), s.file, n)) return "cannot open the file";
  const uint8_t* data = s.file.data();
  if (n < 8 || png_sig_cmp(data, 0, 8) != 0) return "not a PNG signature";
  if (decode_plain(data, n, channels, s, out, dims)) return "";
  Decode d;
  d.data = data;
  d.size = n;
  const size_t start = out.size();
  const bool ok = decode_into(d, channels, out, dims);
  release(d);
  if (ok) return "";
  out.resize(start);  // drop what a failed decode had written
  return d.message[0] != '\0' ? d.message : "libpng: unknown error";
}

// Each compute thread's scratch, kept across batches: the inflater and the buffers are made once a thread.
Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

// ----- the affine warp of the fused path -----------------------------------------------------------------
//
// F.grid_sample(x - fill, affine grid of theta, align_corners=False) + fill for one image, computed as torch's
// CPU kernel computes it (aten/src/ATen/native/cpu/GridSamplerKernel.cpp, float32): each output pixel's grid
// value is theta's per-column term plus its per-row term (augment.affine_grid, from the same pixel centres),
// unnormalised as (g + 1) * (size / 2) - 0.5, reflected and clipped as torch does, then bilinear weights
// ((1 - dy)(1 - dx), (1 - dy) dx, dy (1 - dx), dy dx) summed in torch's order, or the nearest pixel with
// round-half-even; corners outside the image read 0 (zeros padding; border and reflection coordinates never
// leave it). The same float operations in the same order give the same values up to the last bits.

// Products are fused into sums only where written (std::fma, _mm256_fmadd_ps): where torch's kernel fuses.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

enum Padding { kZeros = 0, kClip = 1, kReflection = 2 };

// Zero pixels around the source image: a bilinear sample whose corners fall outside reads them instead of
// being masked (indices clamped to [-2, size]: both corners of a clamped index lie in the border), the
// value torch's masked read gives (0).
constexpr int kBorder = 2;

// A row's term of the grid, t2 + t1 * y, rounded once as torch's addcmul (augment.affine_grid) rounds it.
inline float row_term(float t2, float t1, float y) { return std::fma(t1, y, t2); }

struct WarpAxis {
  float half;   // size / 2
  float top;    // size - 1
  float span2;  // 2 * size
  int size;
  explicit WarpAxis(int n)
      : half(static_cast<float>(n) / 2), top(static_cast<float>(n - 1)), span2(static_cast<float>(n) * 2),
        size(n) {}
};

inline float source_coord(float g, const WarpAxis& a, int padding) {
  float x = std::fma(g + 1.0f, a.half, -0.5f);
  if (padding == kReflection) {
    const float in = std::fabs(x + 0.5f);
    const float extra = std::fma(-std::trunc(in / a.span2), a.span2, in);
    x = std::min(extra, a.span2 - extra) - 0.5f;
  }
  if (padding != kZeros) x = std::min(a.top, std::max(0.0f, x));
  return x;
}

struct WarpParams {
  int sh, sw, channels;       // source size and samples a pixel
  int pitch;                  // floats from one source row to the next (the rows carry a zero border)
  int oh, ow;                 // output size
  int padding;
  bool nearest;
  const float* xs;            // the output's pixel centres, normalised (augment._pixel_centres)
  const float* ys;
};

// Output pixels [j0, j1) of row i, one at a time (the rows' ends, and machines without AVX2).
void warp_pixels(const float* src, const float* t, const WarpParams& p, const WarpAxis& ax, const WarpAxis& ay,
                 int i, int j0, int j1, float fill, float* out) {
  const int c_n = p.channels;
  const float row_x = row_term(t[2], t[1], p.ys[i]), row_y = row_term(t[5], t[4], p.ys[i]);
  for (int j = j0; j < j1; ++j) {
    const float x = source_coord(t[0] * p.xs[j] + row_x, ax, p.padding);
    const float y = source_coord(t[3] * p.xs[j] + row_y, ay, p.padding);
    float* o = out + (static_cast<size_t>(i) * p.ow + j) * c_n;
    if (p.nearest) {
      const int ix = static_cast<int>(std::nearbyint(x)), iy = static_cast<int>(std::nearbyint(y));
      const bool in = ix > -1 && ix < p.sw && iy > -1 && iy < p.sh;
      for (int c = 0; c < c_n; ++c) o[c] = (in ? src[static_cast<ptrdiff_t>(iy) * p.pitch + ix * c_n + c] : 0.0f) + fill;
      continue;
    }
    const float x0 = std::floor(x), y0 = std::floor(y);
    const float w = x - x0, e = 1.0f - w, n = y - y0, s = 1.0f - n;
    const float nw = s * e, ne = s * w, sw = n * e, se = n * w;
    const int ix = static_cast<int>(x0), iy = static_cast<int>(y0);
    const bool in_w = ix > -1 && ix < p.sw, in_e = ix + 1 > -1 && ix + 1 < p.sw;
    const bool in_n = iy > -1 && iy < p.sh, in_s = iy + 1 > -1 && iy + 1 < p.sh;
    const float* r0 = src + static_cast<ptrdiff_t>(iy) * p.pitch + static_cast<ptrdiff_t>(ix) * c_n;
    const float* r1 = r0 + p.pitch;
    for (int c = 0; c < c_n; ++c) {
      const float v_nw = in_n && in_w ? r0[c] : 0.0f, v_ne = in_n && in_e ? r0[c_n + c] : 0.0f;
      const float v_sw = in_s && in_w ? r1[c] : 0.0f, v_se = in_s && in_e ? r1[c_n + c] : 0.0f;
      o[c] = std::fma(v_se, se, std::fma(v_sw, sw, std::fma(v_ne, ne, v_nw * nw))) + fill;
    }
  }
}

#ifdef PYDLR_WARP_AVX2
// Eight output pixels of row i from column j, in AVX2 with FMA where torch's compiled kernel has fused a
// product into the sum that follows it (and nowhere else).
__attribute__((target("avx2,fma"))) inline __m256 source_coord8(__m256 g, const WarpAxis& a, int padding) {
  __m256 x = _mm256_fmsub_ps(_mm256_add_ps(g, _mm256_set1_ps(1.0f)), _mm256_set1_ps(a.half), _mm256_set1_ps(0.5f));
  if (padding == kReflection) {
    const __m256 span2 = _mm256_set1_ps(a.span2);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 in = _mm256_andnot_ps(sign, _mm256_add_ps(x, _mm256_set1_ps(0.5f)));
    const __m256 flips = _mm256_round_ps(_mm256_div_ps(in, span2), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 extra = _mm256_fnmadd_ps(flips, span2, in);
    x = _mm256_sub_ps(_mm256_min_ps(extra, _mm256_sub_ps(span2, extra)), _mm256_set1_ps(0.5f));
  }
  if (padding != kZeros) x = _mm256_min_ps(_mm256_set1_ps(a.top), _mm256_max_ps(x, _mm256_setzero_ps()));
  return x;
}

__attribute__((target("avx2,fma"))) inline __m256i in_range(__m256i v, int size) {
  return _mm256_and_si256(_mm256_cmpgt_epi32(v, _mm256_set1_epi32(-1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(size), v));
}

// row_x, row_y: the row's terms of the grid (row_term).
__attribute__((target("avx2,fma"))) void warp_row8(const float* src, const float* t, const WarpParams& p,
                                               const WarpAxis& ax, const WarpAxis& ay, int i, int j, float row_x,
                                               float row_y, float fill, float* out) {
  const int c_n = p.channels;
  const __m256 cx = _mm256_loadu_ps(p.xs + j);
  const __m256 gx = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(t[0]), cx), _mm256_set1_ps(row_x));
  const __m256 gy = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(t[3]), cx), _mm256_set1_ps(row_y));
  const __m256 x = source_coord8(gx, ax, p.padding), y = source_coord8(gy, ay, p.padding);
  const __m256i row = _mm256_set1_epi32(p.pitch), step = _mm256_set1_epi32(c_n);
  alignas(32) float res[4][8];
  if (p.nearest) {
    const __m256 xr = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 yr = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i ix = _mm256_cvttps_epi32(xr), iy = _mm256_cvttps_epi32(yr);
    const __m256i mask = _mm256_and_si256(in_range(ix, p.sw), in_range(iy, p.sh));
    const __m256i off = _mm256_add_epi32(_mm256_mullo_epi32(iy, row), _mm256_mullo_epi32(ix, step));
    for (int c = 0; c < c_n; ++c) {
      const __m256 v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src + c, off, _mm256_castsi256_ps(mask), 4);
      _mm256_store_ps(res[c], _mm256_add_ps(v, _mm256_set1_ps(fill)));
    }
  } else {
    const __m256 x0 = _mm256_floor_ps(x), y0 = _mm256_floor_ps(y);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 w = _mm256_sub_ps(x, x0), e = _mm256_sub_ps(one, w);
    const __m256 n = _mm256_sub_ps(y, y0), s = _mm256_sub_ps(one, n);
    const __m256 nw = _mm256_mul_ps(s, e), ne = _mm256_mul_ps(s, w), sw = _mm256_mul_ps(n, e),
                 se = _mm256_mul_ps(n, w);
    const __m256i ix = _mm256_cvttps_epi32(x0), iy = _mm256_cvttps_epi32(y0);
    const __m256i ix1 = _mm256_add_epi32(ix, _mm256_set1_epi32(1)), iy1 = _mm256_add_epi32(iy, _mm256_set1_epi32(1));
    const __m256i m_w = in_range(ix, p.sw), m_e = in_range(ix1, p.sw);
    const __m256i m_n = in_range(iy, p.sh), m_s = in_range(iy1, p.sh);
    const __m256 k_nw = _mm256_castsi256_ps(_mm256_and_si256(m_n, m_w));
    const __m256 k_ne = _mm256_castsi256_ps(_mm256_and_si256(m_n, m_e));
    const __m256 k_sw = _mm256_castsi256_ps(_mm256_and_si256(m_s, m_w));
    const __m256 k_se = _mm256_castsi256_ps(_mm256_and_si256(m_s, m_e));
    const __m256i o_nw = _mm256_add_epi32(_mm256_mullo_epi32(iy, row), _mm256_mullo_epi32(ix, step));
    const __m256i o_ne = _mm256_add_epi32(o_nw, step), o_sw = _mm256_add_epi32(o_nw, row);
    const __m256i o_se = _mm256_add_epi32(o_sw, step);
    const __m256 zero = _mm256_setzero_ps();
    for (int c = 0; c < c_n; ++c) {
      const float* b = src + c;
      const __m256 v_nw = _mm256_mask_i32gather_ps(zero, b, o_nw, k_nw, 4);
      const __m256 v_ne = _mm256_mask_i32gather_ps(zero, b, o_ne, k_ne, 4);
      const __m256 v_sw = _mm256_mask_i32gather_ps(zero, b, o_sw, k_sw, 4);
      const __m256 v_se = _mm256_mask_i32gather_ps(zero, b, o_se, k_se, 4);
      __m256 v = _mm256_fmadd_ps(v_ne, ne, _mm256_mul_ps(v_nw, nw));
      v = _mm256_fmadd_ps(v_sw, sw, v);
      v = _mm256_fmadd_ps(v_se, se, v);
      _mm256_store_ps(res[c], _mm256_add_ps(v, _mm256_set1_ps(fill)));
    }
  }
  float* o = out + (static_cast<size_t>(i) * p.ow + j) * c_n;
  if (c_n == 1) {
    std::memcpy(o, res[0], sizeof(res[0]));
  } else {
    for (int k = 0; k < 8; ++k)
      for (int c = 0; c < c_n; ++c) o[k * c_n + c] = res[c][k];
  }
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The same in AVX-512, sixteen pixels at a time.
__attribute__((target("avx512f,fma"))) inline __m512 source_coord16(__m512 g, const WarpAxis& a, int padding) {
  __m512 x = _mm512_fmsub_ps(_mm512_add_ps(g, _mm512_set1_ps(1.0f)), _mm512_set1_ps(a.half), _mm512_set1_ps(0.5f));
  if (padding == kReflection) {
    const __m512 span2 = _mm512_set1_ps(a.span2);
    const __m512 in = _mm512_abs_ps(_mm512_add_ps(x, _mm512_set1_ps(0.5f)));
    const __m512 flips = _mm512_roundscale_ps(_mm512_div_ps(in, span2), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 extra = _mm512_fnmadd_ps(flips, span2, in);
    x = _mm512_sub_ps(_mm512_min_ps(extra, _mm512_sub_ps(span2, extra)), _mm512_set1_ps(0.5f));
  }
  if (padding != kZeros) x = _mm512_min_ps(_mm512_set1_ps(a.top), _mm512_max_ps(x, _mm512_setzero_ps()));
  return x;
}

__attribute__((target("avx512f,fma"))) inline __mmask16 in_range16(__m512i v, int size) {
  return _mm512_cmpgt_epi32_mask(v, _mm512_set1_epi32(-1)) & _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(size), v);
}

__attribute__((target("avx512f,fma"))) void warp_row16(const float* src, const float* t, const WarpParams& p,
                                                      const WarpAxis& ax, const WarpAxis& ay, int i, int j,
                                                      float row_x, float row_y, float fill, float* out) {
  const int c_n = p.channels;
  const __m512 cx = _mm512_loadu_ps(p.xs + j);
  const __m512 gx = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(t[0]), cx), _mm512_set1_ps(row_x));
  const __m512 gy = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(t[3]), cx), _mm512_set1_ps(row_y));
  const __m512 x = source_coord16(gx, ax, p.padding), y = source_coord16(gy, ay, p.padding);
  const __m512i row = _mm512_set1_epi32(p.pitch), step = _mm512_set1_epi32(c_n);
  alignas(64) float res[4][16];
  const __m512 zero = _mm512_setzero_ps();
  if (p.nearest) {
    const __m512 xr = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 yr = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i ix = _mm512_cvttps_epi32(xr), iy = _mm512_cvttps_epi32(yr);
    const __mmask16 mask = in_range16(ix, p.sw) & in_range16(iy, p.sh);
    const __m512i off = _mm512_add_epi32(_mm512_mullo_epi32(iy, row), _mm512_mullo_epi32(ix, step));
    for (int c = 0; c < c_n; ++c) {
      const __m512 v = _mm512_mask_i32gather_ps(zero, mask, off, src + c, 4);
      _mm512_store_ps(res[c], _mm512_add_ps(v, _mm512_set1_ps(fill)));
    }
  } else {
    const __m512 x0 = _mm512_floor_ps(x), y0 = _mm512_floor_ps(y);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 w = _mm512_sub_ps(x, x0), e = _mm512_sub_ps(one, w);
    const __m512 n = _mm512_sub_ps(y, y0), s = _mm512_sub_ps(one, n);
    const __m512 nw = _mm512_mul_ps(s, e), ne = _mm512_mul_ps(s, w), sw = _mm512_mul_ps(n, e),
                 se = _mm512_mul_ps(n, w);
    const __m512i ix = _mm512_cvttps_epi32(x0), iy = _mm512_cvttps_epi32(y0);
    const __m512i ix1 = _mm512_add_epi32(ix, _mm512_set1_epi32(1)), iy1 = _mm512_add_epi32(iy, _mm512_set1_epi32(1));
    const __mmask16 m_w = in_range16(ix, p.sw), m_e = in_range16(ix1, p.sw);
    const __mmask16 m_n = in_range16(iy, p.sh), m_s = in_range16(iy1, p.sh);
    const __m512i o_nw = _mm512_add_epi32(_mm512_mullo_epi32(iy, row), _mm512_mullo_epi32(ix, step));
    const __m512i o_ne = _mm512_add_epi32(o_nw, step), o_sw = _mm512_add_epi32(o_nw, row);
    const __m512i o_se = _mm512_add_epi32(o_sw, step);
    if (c_n == 1) {
      // grey: a pixel's west and east corners are neighbours in memory, one 64-bit gather fetches both (half
      // the gathered elements); indices clamped into the zero border replace the masks
      const __m512i lo = _mm512_set1_epi32(-kBorder);
      const __m512i cx0 = _mm512_min_epi32(_mm512_max_epi32(ix, lo), _mm512_set1_epi32(p.sw));
      const __m512i cy0 = _mm512_min_epi32(_mm512_max_epi32(iy, lo), _mm512_set1_epi32(p.sh));
      const __m512i o = _mm512_add_epi32(_mm512_mullo_epi32(cy0, row), cx0);
      const __m512i o2 = _mm512_add_epi32(o, row);
      const double* base = reinterpret_cast<const double*>(src);
      const __m512 t0 = _mm512_castpd_ps(_mm512_i32gather_pd(_mm512_castsi512_si256(o), base, 4));
      const __m512 t1 = _mm512_castpd_ps(_mm512_i32gather_pd(_mm512_extracti64x4_epi64(o, 1), base, 4));
      const __m512 b0 = _mm512_castpd_ps(_mm512_i32gather_pd(_mm512_castsi512_si256(o2), base, 4));
      const __m512 b1 = _mm512_castpd_ps(_mm512_i32gather_pd(_mm512_extracti64x4_epi64(o2, 1), base, 4));
      const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
      const __m512 v_nw = _mm512_permutex2var_ps(t0, even, t1), v_ne = _mm512_permutex2var_ps(t0, odd, t1);
      const __m512 v_sw = _mm512_permutex2var_ps(b0, even, b1), v_se = _mm512_permutex2var_ps(b0, odd, b1);
      __m512 v = _mm512_fmadd_ps(v_ne, ne, _mm512_mul_ps(v_nw, nw));
      v = _mm512_fmadd_ps(v_sw, sw, v);
      v = _mm512_fmadd_ps(v_se, se, v);
      _mm512_storeu_ps(out + static_cast<size_t>(i) * p.ow + j, _mm512_add_ps(v, _mm512_set1_ps(fill)));
      return;
    }
    for (int c = 0; c < c_n; ++c) {
      const float* b = src + c;
      const __m512 v_nw = _mm512_mask_i32gather_ps(zero, m_n & m_w, o_nw, b, 4);
      const __m512 v_ne = _mm512_mask_i32gather_ps(zero, m_n & m_e, o_ne, b, 4);
      const __m512 v_sw = _mm512_mask_i32gather_ps(zero, m_s & m_w, o_sw, b, 4);
      const __m512 v_se = _mm512_mask_i32gather_ps(zero, m_s & m_e, o_se, b, 4);
      __m512 v = _mm512_fmadd_ps(v_ne, ne, _mm512_mul_ps(v_nw, nw));
      v = _mm512_fmadd_ps(v_sw, sw, v);
      v = _mm512_fmadd_ps(v_se, se, v);
      _mm512_store_ps(res[c], _mm512_add_ps(v, _mm512_set1_ps(fill)));
    }
  }
  float* o = out + (static_cast<size_t>(i) * p.ow + j) * c_n;
  if (c_n == 1) {
    std::memcpy(o, res[0], sizeof(res[0]));
  } else {
    for (int k = 0; k < 16; ++k)
      for (int c = 0; c < c_n; ++c) o[k * c_n + c] = res[c][k];
  }
}

int warp_isa() {
  static const int isa = [] {
    const char* force = std::getenv("PYDLR_WARP_ISA");
    int best = __builtin_cpu_supports("avx512f") && has_avx2() ? 512 : has_avx2() ? 256 : 0;
    return force != nullptr ? std::min(best, std::atoi(force)) : best;
  }();
  return isa;
}
#endif

// One image: src (sh x sw x channels floats, already less the fill) warped by theta t into out.
void warp_image(const float* src, const float* t, const WarpParams& p, float fill, float* out) {
  const WarpAxis ax(p.sw), ay(p.sh);
  for (int i = 0; i < p.oh; ++i) {
    int j = 0;
#ifdef PYDLR_WARP_AVX2
    // the last block overlaps the one before it when the row is not a multiple of the block: the shared pixels
    // come out the same both times
    const float row_x = row_term(t[2], t[1], p.ys[i]), row_y = row_term(t[5], t[4], p.ys[i]);
    if (warp_isa() >= 512 && p.ow >= 16) {
      for (; j < p.ow; j += 16) warp_row16(src, t, p, ax, ay, i, std::min(j, p.ow - 16), row_x, row_y, fill, out);
      continue;
    }
    if (warp_isa() >= 256 && p.ow >= 8) {
      for (; j < p.ow; j += 8) warp_row8(src, t, p, ax, ay, i, std::min(j, p.ow - 8), row_x, row_y, fill, out);
      continue;
    }
#endif
    warp_pixels(src, t, p, ax, ay, i, j, p.ow, fill, out);
  }
}

#pragma GCC pop_options

// The fused path for one file: decoded, checked against the size rule, converted to floats less the fill and
// warped into out. "" or why the file was not taken.
std::string decode_and_warp(const std::string& path, const WarpParams& base, bool resize, const float* t,
                            float fill, Scratch& s, float* out) {
  s.pixels.clear();
  int64_t dims[2] = {0, 0};
  std::string err = decode_file(path, base.channels, s, s.pixels, dims);
  if (!err.empty()) return err;
  WarpParams p = base;
  p.sh = static_cast<int>(dims[0]);
  p.sw = static_cast<int>(dims[1]);
  // the one bilinear resampling stands in for a resize only up to halving (below, Pillow's filtered resize)
  const bool fits = resize ? (2 * dims[0] >= p.oh && 2 * dims[1] >= p.ow) : (dims[0] == p.oh && dims[1] == p.ow);
  if (!fits) return "size";
  // the image as floats less the fill, inside a border of kBorder zero pixels
  const int c_n = p.channels;
  p.pitch = (p.sw + 2 * kBorder) * c_n;
  const size_t size = static_cast<size_t>(p.sh + 2 * kBorder) * p.pitch;
  if (s.plane.size() < size) s.plane.resize(size);
  float* plane = s.plane.data();
  std::fill(plane, plane + size, 0.0f);
  float* origin = plane + kBorder * p.pitch + kBorder * c_n;
  const uint8_t* px = s.pixels.data();
  const size_t row = static_cast<size_t>(p.sw) * c_n;
  for (int y = 0; y < p.sh; ++y) {
    float* dst = origin + static_cast<ptrdiff_t>(y) * p.pitch;
    const uint8_t* from = px + y * row;
    for (size_t k = 0; k < row; ++k) dst[k] = static_cast<float>(from[k]) - fill;
  }
  warp_image(origin, t, p, fill, out);
  return "";
}

}  // namespace
#endif

#ifdef PYDLR_WITH_LIBPNG
namespace {
// Whether a batch is worth sharing between the compute threads. Shared, a batch ends when every thread has
// come to the region's end; a thread whose core another process holds arrives late, and the batch waits for
// it, however little it did. After a shared batch that took over 3/4 of what the calling thread alone would
// have needed (its own time per image times the batch), the next kSoloBatches run on the calling thread
// alone, then sharing is tried again.
struct Contention {
  static constexpr int kSoloBatches = 32;
  static std::atomic<int>& solo() {
    static std::atomic<int> left{0};
    return left;
  }
  static bool parallel() {
    int left = solo().load(std::memory_order_relaxed);
    if (left <= 0) return true;
    solo().store(left - 1, std::memory_order_relaxed);
    return false;
  }
  static void report(double wall, double own_seconds, int64_t own_images, int64_t n) {
    const double alone = own_images > 0 ? own_seconds / own_images * n : wall;
    if (own_images >= n || wall > 0.75 * alone) solo().store(kSoloBatches, std::memory_order_relaxed);
  }
};
}  // namespace
#endif

// decode_png_warp_batch(paths, channels, theta, xs, ys, out, interpolation, padding, fill, resize) -> errors
//   Each file decoded as decode_png_batch decodes it and warped straight into out[i] (float32 NHWC, values
//   0-255) as Augment's grid_sample would: theta (n, 2, 3) float32, xs / ys the output's pixel centres
//   (augment._pixel_centres), interpolation 0 bilinear / 1 nearest, padding 0 zeros / 1 border / 2 reflection,
//   fill the constant fill's value (0 otherwise). resize: the source may have another size (not below half
//   the output's); else it must be the output's size. errors[i]: "" where out[i] was written, else why not
//   (the caller then prepares the batch the other way).
// The images are shared between the compute threads in small chunks handed out as threads come for them, so
// a thread that another process holds up leaves its share to the others instead of holding up the batch.
std::vector<std::string> decode_png_warp_batch_cpu(const c10::List<std::string>& paths, int64_t channels,
                                                   const at::Tensor& theta, const at::Tensor& xs,
                                                   const at::Tensor& ys, at::Tensor& out, int64_t interpolation,
                                                   int64_t padding, double fill, bool resize) {
  const int64_t n = static_cast<int64_t>(paths.size());
  TORCH_CHECK(channels == 1 || channels == 3 || channels == 4,
              "pydlr::decode_png_warp_batch: channels must be 1, 3 or 4, got ", channels);
  TORCH_CHECK(theta.dtype() == at::kFloat && theta.is_contiguous() && theta.dim() == 3 && theta.size(0) == n &&
                  theta.size(1) == 2 && theta.size(2) == 3,
              "pydlr::decode_png_warp_batch: theta must be contiguous float32 (n, 2, 3)");
  TORCH_CHECK(out.dtype() == at::kFloat && out.is_contiguous() && out.dim() == 4 && out.size(0) >= n &&
                  out.size(3) == channels && out.device().is_cpu(),
              "pydlr::decode_png_warp_batch: out must be contiguous float32 (>= n, h, w, channels) on the CPU");
  TORCH_CHECK(xs.dtype() == at::kFloat && xs.is_contiguous() && xs.numel() == out.size(2) &&
                  ys.dtype() == at::kFloat && ys.is_contiguous() && ys.numel() == out.size(1),
              "pydlr::decode_png_warp_batch: xs / ys must be float32 of the output's width / height");
  TORCH_CHECK(interpolation == 0 || interpolation == 1, "pydlr::decode_png_warp_batch: interpolation 0 or 1");
  TORCH_CHECK(padding >= 0 && padding <= 2, "pydlr::decode_png_warp_batch: padding 0, 1 or 2");
  std::vector<std::string> errors(n);
#ifdef PYDLR_WITH_LIBPNG
  WarpParams base{0, 0, static_cast<int>(channels), 0, static_cast<int>(out.size(1)), static_cast<int>(out.size(2)),
                  static_cast<int>(padding), interpolation == 1, xs.data_ptr<float>(), ys.data_ptr<float>()};
  const float* th = theta.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const size_t image = static_cast<size_t>(base.oh) * base.ow * channels;
  const float f = static_cast<float>(fill);
  constexpr int64_t kChunk = 4;
  std::atomic<int64_t> next{0};
  int64_t own_images = 0;     // done by the calling thread
  double own_seconds = 0.0;   // its time on them
  const auto work = [&](bool caller) {
    Scratch& s = thread_scratch();
    const auto start = std::chrono::steady_clock::now();
    for (int64_t k = next.fetch_add(kChunk); k < n; k = next.fetch_add(kChunk)) {
      for (int64_t i = k; i < std::min(n, k + kChunk); ++i)
        errors[i] = decode_and_warp(paths.get(i), base, resize, th + 6 * i, f, s, dst + image * i);
      if (caller) own_images += std::min(n, k + kChunk) - k;
    }
    if (caller) own_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.trim();
  };
  const int64_t tasks = std::min<int64_t>(at::get_num_threads(), (n + kFilesPerTask - 1) / kFilesPerTask);
  if (tasks < 2 || !Contention::parallel()) {
    work(true);
  } else {
    const auto start = std::chrono::steady_clock::now();
    at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) { work(at::get_thread_num() == 0); });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Contention::report(wall, own_seconds, own_images, n);
  }
#else
  for (int64_t i = 0; i < n; ++i) errors[i] = "built without libpng";
#endif
  return errors;
}

// decode_png_batch(paths, channels) -> (pixels, meta, errors)
//   pixels: uint8, every decoded image's h * w * channels samples (HWC) one after the other
//   meta:   int64 (n, 3): height, width and offset into pixels of file i (zeros where errors[i] is not empty)
//   errors: "" for a decoded file, else why it was not decoded here (the caller then decodes it with Pillow)
std::tuple<at::Tensor, at::Tensor, std::vector<std::string>> decode_png_batch_cpu(const c10::List<std::string>& paths,
                                                                                 int64_t channels) {
  TORCH_CHECK(channels == 1 || channels == 3 || channels == 4,
              "pydlr::decode_png_batch: channels must be 1, 3 or 4, got ", channels);
  const int64_t n = static_cast<int64_t>(paths.size());
  at::Tensor meta = at::zeros({n, 3}, at::kLong);
  int64_t* m = meta.data_ptr<int64_t>();
  auto pixels = std::make_unique<std::vector<uint8_t>>();
  std::vector<std::string> errors(n);
#ifdef PYDLR_WITH_LIBPNG
  // Files are decoded on torch's compute threads, one parallel region a batch: where the caller runs on one
  // thread (a worker process) this is the plain loop; in the training process (workers = 0) a batch's files
  // are split between the threads, each with its own scratch and output, then joined in file order.
  std::vector<std::vector<uint8_t>> parts(n);
  std::vector<std::array<int64_t, 2>> dims(n, {0, 0});
  at::parallel_for(0, n, kFilesPerTask, [&](int64_t begin, int64_t end) {
    Scratch& scratch = thread_scratch();
    for (int64_t i = begin; i < end; ++i)
      errors[i] = decode_file(paths.get(i), static_cast<int>(channels), scratch, parts[i], dims[i].data());
    scratch.trim();
  });
  size_t total_bytes = 0;
  for (const auto& part : parts) total_bytes += part.size();
  pixels->resize(total_bytes);
  size_t at = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) continue;
    m[i * 3] = dims[i][0];
    m[i * 3 + 1] = dims[i][1];
    m[i * 3 + 2] = static_cast<int64_t>(at);
    std::memcpy(pixels->data() + at, parts[i].data(), parts[i].size());
    at += parts[i].size();
  }
#else
  for (int64_t i = 0; i < n; ++i) errors[i] = "built without libpng";
#endif
  // The tensor takes over the vector's memory (no copy of the pixels).
  const int64_t total = static_cast<int64_t>(pixels->size());
  if (total == 0) return {at::empty({0}, at::kByte), meta, errors};
  uint8_t* data = pixels->data();
  auto* owner = pixels.release();
  at::Tensor out = torch::from_blob(data, {total}, [owner](void*) { delete owner; }, at::kByte);
  return {out, meta, errors};
}

bool png_decoder_available() {
#ifdef PYDLR_WITH_LIBPNG
  return true;
#else
  return false;
#endif
}

}  // namespace pydlr
