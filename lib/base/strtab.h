// strtab.h — a string table: each distinct string gets a dense id (0, 1, 2, ... in order of
// first appearance). The one hash table of the library (open addressing, FNV-1a, a
// power-of-two table kept at most half full), used for codes, labels, species and split keys.
#ifndef VET_STRTAB_H
#define VET_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **str;      // str[id]: the table's own copy of each string
    size_t n, cap;
    uint32_t *slot;  // id + 1, 0 = empty
    size_t nslot;
} vet_strtab;        // zero-initialise (vet_strtab t = {0}) before use

// The id of s, adding a copy of s when it is new; -1 when out of memory.
long vet_strtab_intern(vet_strtab *t, const char *s);

// The id of s, or -1 when s is not in the table.
long vet_strtab_find(const vet_strtab *t, const char *s);

void vet_strtab_free(vet_strtab *t);

#endif
