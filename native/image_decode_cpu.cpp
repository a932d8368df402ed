// Batched PNG decoding for the image datasets (pydlr::decode_png_batch): a list of files decoded in one call,
// with libpng, into one uint8 buffer, each image at its own size in the requested number of channels.
//
// Why native: per file, Python around Pillow's C decoder (open, chunk walk, Image.frombytes, array conversion)
// cost more CPU than the decoding of a small image itself; here a whole batch costs one call.
//
// Only the cases whose pixels are known to equal Pillow's are decoded here: 8-bit grey, grey+alpha, RGB and RGBA,
// interlaced or not, without a tRNS chunk, and not larger than Pillow's decompression-bomb limit. Everything
// else (palettes, 16-bit or 1/2/4-bit samples, transparency chunks, files that are not PNGs) and every file
// libpng reports an error for (corrupt, truncated, bad CRC) comes back with a non-empty message, and the caller
// decodes that file with Pillow, which decodes it or names the problem exactly as it does without this op.
// Colour conversions follow Pillow's: grey -> RGB repeats the sample, alpha is added as 255 or dropped, and
// RGB -> grey is ITU-R 601-2 luma with Pillow's integer weights and rounding (L24 in Pillow's Convert.c).
#include <torch/extension.h>

#ifdef PYDLR_WITH_LIBPNG
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#endif

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

// Everything one decode owns, plain data only: libpng's error path longjmps back over the decoding frame,
// which must therefore hold no object with a destructor. Released by release() on both paths.
struct Decode {
  FILE* file = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_bytep* rows = nullptr;
  uint8_t* scratch = nullptr;  // RGB(A) rows before conversion to grey
  char message[256] = {0};
  jmp_buf jump;
};

void release(Decode& d) {
  if (d.png != nullptr) png_destroy_read_struct(&d.png, d.info != nullptr ? &d.info : nullptr, nullptr);
  if (d.file != nullptr) std::fclose(d.file);
  std::free(d.rows);
  std::free(d.scratch);
  d.file = nullptr;
  d.rows = nullptr;
  d.scratch = nullptr;
}

void on_error(png_structp png, png_const_charp msg) {
  auto* d = static_cast<Decode*>(png_get_error_ptr(png));
  std::snprintf(d->message, sizeof(d->message), "libpng: %s", msg);
  longjmp(d->jump, 1);
}

void on_warning(png_structp, png_const_charp) {}  // benign (e.g. an unknown ancillary chunk): not reported

// Pillow's L24: (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16.
void rgb_to_grey(const uint8_t* src, int step, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i, src += step) {
    dst[i] = static_cast<uint8_t>((src[0] * 19595u + src[1] * 38470u + src[2] * 7471u + 0x8000u) >> 16);
  }
}

// Decodes d.file into out (grown by the image's h * w * channels bytes); dims receives (h, w). Returns false
// with d.message set when the file is not one this decoder takes or libpng reports an error.
// Kept in one function because setjmp must stay in the frame that libpng longjmps back to.
bool decode_into(Decode& d, int channels, std::vector<uint8_t>& out, int64_t dims[2]) {
  png_byte sig[8];
  if (std::fread(sig, 1, 8, d.file) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    std::snprintf(d.message, sizeof(d.message), "not a PNG signature");
    return false;
  }
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_error, on_warning);
  if (d.png == nullptr) return std::snprintf(d.message, sizeof(d.message), "libpng: out of memory"), false;
  d.info = png_create_info_struct(d.png);
  if (d.info == nullptr) return std::snprintf(d.message, sizeof(d.message), "libpng: out of memory"), false;
  if (setjmp(d.jump)) return false;  // d.message was set by on_error
  png_init_io(d.png, d.file);
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
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = paths.get(i);
    Decode d;
    const size_t start = pixels->size();
    d.file = std::fopen(path.c_str(), "rb");
    int64_t dims[2] = {0, 0};
    if (d.file == nullptr) {
      errors[i] = "cannot open the file";
    } else if (decode_into(d, static_cast<int>(channels), *pixels, dims)) {
      m[i * 3] = dims[0];
      m[i * 3 + 1] = dims[1];
      m[i * 3 + 2] = static_cast<int64_t>(start);
    } else {
      errors[i] = d.message[0] != '\0' ? d.message : "libpng: unknown error";
      pixels->resize(start);  // drop what a failed decode had written
    }
    release(d);
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
