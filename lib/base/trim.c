// trim.c — see trim.h.
#include "base/trim.h"

#include <string.h>

const char *vet_trim_span(const char *s, size_t *len) {
    size_t a = 0, b = *len;
    while (a < b && vet_is_blank((unsigned char)s[a])) a++;
    while (b > a && vet_is_blank((unsigned char)s[b - 1])) b--;
    *len = b - a;
    return s + a;
}

char *vet_trim(char *s) {
    size_t n = strlen(s);
    char *t = (char *)vet_trim_span(s, &n);
    t[n] = '\0';
    return t;
}

bool vet_is_blank_str(const char *s) {
    for (; *s; s++)
        if (!vet_is_blank((unsigned char)*s)) return false;
    return true;
}
