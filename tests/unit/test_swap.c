// test_swap.c — species swap tables and whole-word replacement (lib/swap.h).
#include <stdlib.h>

#include "check.h"
#include "data/swap.h"

static void test_parse(void) {
    vet_swap s;
    vet_err err = {0};
    CHECK(vet_swap_parse("Cow=Buffalo,Sheep=Goat", &s, &err) == 0);
    CHECK(s.n == 2);
    CHECK_STR(vet_swap_partner(&s, "Cow"), "Buffalo");
    CHECK_STR(vet_swap_partner(&s, "buffalo"), "Cow");  // both ways, any case
    CHECK_STR(vet_swap_partner(&s, "GOAT"), "Sheep");
    CHECK(vet_swap_partner(&s, "Horse") == NULL);
    CHECK(vet_swap_partner(&s, "Co") == NULL);  // whole names only
    CHECK(vet_swap_partner(&s, "Cows") == NULL);
    vet_swap_free(&s);
    CHECK(vet_swap_parse("Water buffalo=Cattle", &s, &err) == 0);  // a name may hold spaces
    CHECK_STR(vet_swap_partner(&s, "water BUFFALO"), "Cattle");
    vet_swap_free(&s);

    const char *bad[] = {"", "Cow", "=Goat", "Cow=", "Cow=Buffalo,", ",Cow=Buffalo", "Cow=Buffalo=Yak",
                         "Cow=Buffalo,,Sheep=Goat"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        CHECK(vet_swap_parse(bad[i], &s, &err) == -1);
        CHECK_CONTAINS(err.msg, "expected A=B");
        CHECK(s.n == 0);
    }
    CHECK(vet_swap_parse("Cow=Buffalo,cow=Yak", &s, &err) == -1);  // two partners for one species
    CHECK_CONTAINS(err.msg, "'Cow' appears twice");
    CHECK(vet_swap_parse("Cow=COW", &s, &err) == -1);
    CHECK_CONTAINS(err.msg, "appears twice");
    // A name that is not UTF-8 (Latin-1 "Büffel") would be a copy's species, id and note words.
    CHECK(vet_swap_parse("Cow=B\xfc" "ffel", &s, &err) == -1);
    CHECK_CONTAINS(err.msg, "--species-swap is not valid UTF-8 (byte 6)");
    CHECK(err.kind == VET_E_USAGE && s.n == 0);
    CHECK(vet_swap_parse("Cow=B\xc3\xbc" "ffel", &s, &err) == 0);  // the same in UTF-8
    vet_swap_free(&s);
    // The table's size is bounded: 33 pairs are refused, 32 taken.
    char spec[2048] = "";
    for (int i = 0; i < 33; i++) {
        char pair[32];
        snprintf(pair, sizeof pair, "%sa%d=b%d", i ? "," : "", i, i);
        strcat(spec, pair);
    }
    CHECK(vet_swap_parse(spec, &s, &err) == -1);
    CHECK_CONTAINS(err.msg, "more than 32 pairs");
    *strrchr(spec, ',') = 0;
    CHECK(vet_swap_parse(spec, &s, &err) == 0);
    CHECK(s.n == 32);
    CHECK_STR(vet_swap_partner(&s, "b31"), "a31");
    vet_swap_free(&s);
}

static void swap_case(const char *text, const char *from, const char *to, const char *want, int want_n) {
    vet_text out = {0};
    vet_err err;
    int n = vet_swap_words(text, from, to, &out, &err);
    if (n != want_n) fprintf(stderr, "  '%s': %d words replaced, expected %d\n", text, n, want_n);
    CHECK(n == want_n);
    CHECK_STR(out.s, want);
    vet_text_free(&out);
}

static void test_words(void) {
    swap_case("Cow. Clinical presentation includes fever.", "Cow", "Buffalo",
              "Buffalo. Clinical presentation includes fever.", 1);
    // Case follows the word replaced: first letter, or all of it when the word is upper case.
    swap_case("cow, Cow, COW", "Cow", "Buffalo", "buffalo, Buffalo, BUFFALO", 3);
    swap_case("Sheep. The sheep", "sheep", "Goat", "Goat. The goat", 2);
    // Whole words only: inside another word, or with a digit attached, it stays.
    swap_case("Cows and cowpox; scow; cow2; cow-pox; (cow)", "Cow", "Buffalo",
              "Cows and cowpox; scow; cow2; buffalo-pox; (buffalo)", 2);
    swap_case("no species here", "Cow", "Buffalo", "no species here", 0);
    swap_case("", "Cow", "Buffalo", "", 0);
    swap_case("Cow", "Cow", "Buffalo", "Buffalo", 1);  // the whole text
    // UTF-8 around the word is kept byte for byte (non-ASCII bytes end a word).
    swap_case("\xc3\xa9" "Goat\xc3\xa9", "goat", "Sheep", "\xc3\xa9" "Sheep\xc3\xa9", 1);
    // A longer partner grows the text; the one appended to keeps what was there.
    vet_text out = {0};
    vet_err err;
    CHECK(vet_text_append(&out, "x:", 2) == 0);
    CHECK(vet_swap_words("Goat goat", "goat", "Sheep", &out, &err) == 2);
    CHECK_STR(out.s, "x:Sheep sheep");
    vet_text_free(&out);
}

int main(void) {
    RUN(test_parse);
    RUN(test_words);
    CHECK_EXIT();
}
