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
#ifdef PYDLR_WITH_LIBDEFLATE
#include <libdeflate.h>
#endif
#endif

#include <algorithm>
#include <array>
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

}  // namespace
#endif

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
    Scratch scratch;
    for (int64_t i = begin; i < end; ++i)
      errors[i] = decode_file(paths.get(i), static_cast<int>(channels), scratch, parts[i], dims[i].data());
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
