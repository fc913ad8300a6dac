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
#include "base/read_file.h"
#include "base/sha256.h"
#include "data/spm.h"
#include "data/spm_proto.h"
}

struct vet_spm {
    sentencepiece::SentencePieceProcessor sp;
    std::string path;
    char sha256[65];
    mutable std::vector<int> scratch;  // reused by encode
    std::vector<uint8_t> types;        // each piece's type as the model says (empty: ask the processor)
    vet_spm_norm norm{};               // the normalizer as the model's bytes say
    int norm_known = 0;                // 0: the bytes could not be read back (norm holds defaults)
};

// A tokenizer.model is a few MB (LLaMA's is 0.5 MB); anything past this is not one.
static const size_t SPM_MAX_BYTES = (size_t)256 << 20;

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
    char *data;
    size_t len;
    if (vet_read_file(p.c_str(), "tokenizer model", SPM_MAX_BYTES, &data, &len, err) < 0) return nullptr;
    char hex[65];
    vet_sha256_hex(data, len, hex);
    vet_spm *s = vet_spm_from_proto(p.c_str(), data, len, hex, err);
    std::free(data);
    return s;
}

extern "C" vet_spm *vet_spm_from_proto(const char *path, const void *proto, size_t len, const char *sha256_hex,
                                       vet_err *err) {
    vet_spm *s = new (std::nothrow) vet_spm;
    if (!s) {
        vet_err_nomem(err, "%s: out of memory", path);
        return nullptr;
    }
    // No C++ exception leaves this file: every library call that may throw (bad_alloc included)
    // runs inside a try.
    // SentencePiece validates the protobuf, but a model whose pieces its trie builder rejects
    // (an empty piece, say) throws from inside the library: that too is "not a model".
    sentencepiece::util::Status status;
    try {
        status = s->sp.LoadFromSerializedProto(absl::string_view(static_cast<const char *>(proto), len));
        s->path = path;
        // The processor does not say which pieces are user-defined: the model's bytes do.
        if (status.ok() && s->sp.GetPieceSize() > 0) {
            s->types.resize((size_t)s->sp.GetPieceSize());
            s->norm_known = vet_spm_proto_read(proto, len, s->types.data(), s->sp.GetPieceSize(), &s->norm) == 0;
            if (!s->norm_known) s->types.clear(), s->norm = vet_spm_norm{}, s->norm.add_dummy_prefix = 1;
        }
    } catch (const std::bad_alloc &) {
        vet_err_nomem(err, "%s: out of memory", path);
        delete s;
        return nullptr;
    } catch (const std::exception &e) {
        vet_errf(err, "%s: not a usable SentencePiece model (%s)", path, e.what());
        delete s;
        return nullptr;
    } catch (...) {
        vet_errf(err, "%s: not a usable SentencePiece model", path);
        delete s;
        return nullptr;
    }
    if (!status.ok() || s->sp.GetPieceSize() <= 0) {
        vet_errf(err, "%s: not a SentencePiece model (%s)", path, status.ok() ? "no pieces" : status.ToString().c_str());
        delete s;
        return nullptr;
    }
    std::snprintf(s->sha256, sizeof s->sha256, "%s", sha256_hex);
    return s;
}

extern "C" void vet_spm_free(vet_spm *s) { delete s; }

extern "C" int vet_spm_encode(const vet_spm *s, const char *text, size_t len, int32_t **ids,
                              size_t *n, size_t *cap, vet_err *err) {
    try {
        auto status = s->sp.Encode(absl::string_view(text, len), &s->scratch);
        if (!status.ok()) return vet_errf(err, "tokenizer: %s", status.ToString().c_str());
    } catch (const std::bad_alloc &) {
        return vet_err_nomem(err, "tokenizer: out of memory");
    } catch (const std::exception &e) {
        return vet_errf(err, "tokenizer: %s", e.what());
    }
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
    int size = s->sp.GetPieceSize();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= size) {
            vet_errf(err, "tokenizer: id %d out of range (vocabulary of %d)", ids[i], size);
            return nullptr;
        }
    try {
        std::vector<int> v(ids, ids + n);
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
    } catch (const std::bad_alloc &) {
        vet_err_nomem(err, "tokenizer: out of memory");
    } catch (const std::exception &e) {
        vet_errf(err, "tokenizer: %s", e.what());
    }
    return nullptr;
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

extern "C" float vet_spm_score(const vet_spm *s, int id) {
    if (id < 0 || id >= s->sp.GetPieceSize()) return 0.0f;
    return s->sp.GetScore(id);
}

extern "C" int vet_spm_piece_type(const vet_spm *s, int id) {
    if (id < 0 || id >= s->sp.GetPieceSize()) return 0;
    if (!s->types.empty()) return s->types[(size_t)id];
    if (s->sp.IsUnknown(id)) return VET_SPM_UNKNOWN;
    if (s->sp.IsControl(id)) return VET_SPM_CONTROL;
    if (s->sp.IsUnused(id)) return VET_SPM_UNUSED;
    if (s->sp.IsByte(id)) return VET_SPM_BYTE;
    return VET_SPM_NORMAL;
}

extern "C" int vet_spm_add_dummy_prefix(const vet_spm *s) { return s->norm.add_dummy_prefix; }
extern "C" const vet_spm_norm *vet_spm_normalizer(const vet_spm *s) { return s->norm_known ? &s->norm : nullptr; }

extern "C" const char *vet_spm_path(const vet_spm *s) { return s->path.c_str(); }
extern "C" const char *vet_spm_sha256(const vet_spm *s) { return s->sha256; }
