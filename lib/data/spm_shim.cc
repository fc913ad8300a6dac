// spm_shim.cc — spm.h over libsentencepiece's SentencePieceProcessor. The model file is read
// here (not by the library) so that its sha256 names exactly the bytes that were loaded.
#include <sentencepiece_processor.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <sys/stat.h>
#include <vector>

extern "C" {
#include "base/sha256.h"
#include "data/spm.h"
}

struct vet_spm {
    sentencepiece::SentencePieceProcessor sp;
    std::string path;
    char sha256[65];
    mutable std::vector<int> scratch;  // reused by encode
};

static bool read_file(const std::string &path, std::string *out) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
    bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

extern "C" vet_spm *vet_spm_load(const char *path, vet_err *err) {
    std::string p = path;
    struct stat st;
    if (stat(p.c_str(), &st) != 0) {
        vet_err_io(err, "%s: no such tokenizer model (give --spm a tokenizer.model or the model "
                 "directory holding one)", path);
        return nullptr;
    }
    if (S_ISDIR(st.st_mode)) {
        p += "/tokenizer.model";
        if (stat(p.c_str(), &st) != 0) {
            vet_err_io(err, "%s: the directory has no tokenizer.model (a SentencePiece model is "
                     "needed; tokenizer.json alone is not supported)", path);
            return nullptr;
        }
    }
    std::string bytes;
    if (!read_file(p, &bytes)) {
        vet_err_io(err, "%s: cannot read: %s", p.c_str(), std::strerror(errno));
        return nullptr;
    }
    vet_spm *s = new (std::nothrow) vet_spm;
    if (!s) { vet_err_nomem(err, "%s: out of memory", p.c_str()); return nullptr; }
    // SentencePiece validates the protobuf, but a model whose pieces its trie builder rejects
    // (an empty piece, say) throws from inside the library: that too is "not a model".
    sentencepiece::util::Status status;
    try {
        status = s->sp.LoadFromSerializedProto(bytes);
    } catch (const std::exception &e) {
        vet_errf(err, "%s: not a usable SentencePiece model (%s)", p.c_str(), e.what());
        delete s;
        return nullptr;
    } catch (...) {
        vet_errf(err, "%s: not a usable SentencePiece model", p.c_str());
        delete s;
        return nullptr;
    }
    if (!status.ok() || s->sp.GetPieceSize() <= 0) {
        vet_errf(err, "%s: not a SentencePiece model (%s)", p.c_str(),
                 status.ok() ? "no pieces" : status.ToString().c_str());
        delete s;
        return nullptr;
    }
    s->path = p;
    vet_sha256_hex(bytes.data(), bytes.size(), s->sha256);
    return s;
}

extern "C" void vet_spm_free(vet_spm *s) { delete s; }

extern "C" int vet_spm_encode(const vet_spm *s, const char *text, size_t len, int32_t **ids,
                              size_t *n, size_t *cap, vet_err *err) {
    auto status = s->sp.Encode(absl::string_view(text, len), &s->scratch);
    if (!status.ok()) return vet_errf(err, "tokenizer: %s", status.ToString().c_str());
    size_t need = *n + s->scratch.size();
    if (need > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < need) c *= 2;
        void *q = std::realloc(*ids, c * sizeof(int32_t));
        if (!q) return vet_err_nomem(err, "tokenizer: out of memory");
        *ids = static_cast<int32_t *>(q);
        *cap = c;
    }
    for (int id : s->scratch) (*ids)[(*n)++] = id;
    return 0;
}

extern "C" char *vet_spm_decode(const vet_spm *s, const int32_t *ids, size_t n, vet_err *err) {
    std::vector<int> v(ids, ids + n);
    int size = s->sp.GetPieceSize();
    for (int id : v)
        if (id < 0 || id >= size) {
            vet_errf(err, "tokenizer: id %d out of range (vocabulary of %d)", id, size);
            return nullptr;
        }
    std::string text;
    auto status = s->sp.Decode(v, &text);
    if (!status.ok()) {
        vet_errf(err, "tokenizer: %s", status.ToString().c_str());
        return nullptr;
    }
    char *out = static_cast<char *>(std::malloc(text.size() + 1));
    if (!out) { vet_err_nomem(err, "tokenizer: out of memory"); return nullptr; }
    std::memcpy(out, text.data(), text.size() + 1);
    return out;
}

extern "C" int vet_spm_vocab_size(const vet_spm *s) { return s->sp.GetPieceSize(); }
extern "C" int vet_spm_bos_id(const vet_spm *s) { return s->sp.bos_id(); }
extern "C" int vet_spm_eos_id(const vet_spm *s) { return s->sp.eos_id(); }
extern "C" int vet_spm_pad_id(const vet_spm *s) { return s->sp.pad_id(); }
extern "C" int vet_spm_unk_id(const vet_spm *s) { return s->sp.unk_id(); }

extern "C" const char *vet_spm_id_to_piece(const vet_spm *s, int id) {
    if (id < 0 || id >= s->sp.GetPieceSize()) return nullptr;
    // IdToPiece returns a reference into the model proto: stable while s lives.
    return s->sp.IdToPiece(id).c_str();
}

extern "C" int vet_spm_piece_to_id(const vet_spm *s, const char *piece) { return s->sp.PieceToId(piece); }

extern "C" int vet_spm_is_control(const vet_spm *s, int id) {
    if (id < 0 || id >= s->sp.GetPieceSize()) return 0;
    return s->sp.IsControl(id) || s->sp.IsUnknown(id);
}

extern "C" const char *vet_spm_path(const vet_spm *s) { return s->path.c_str(); }
extern "C" const char *vet_spm_sha256(const vet_spm *s) { return s->sha256; }
