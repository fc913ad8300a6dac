# generate.setup.sh — inputs for generate.table: a copy of the rows that a case names as both its
# input and its output (the copy, so a regression cannot destroy what other cases read).
cp "$X/rows.tok" "$X/gen-self.tok"
