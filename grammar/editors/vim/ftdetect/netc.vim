" netc network files: *.net (before Vim's fallback takes a file starting with `#` for `conf`).
autocmd BufNewFile,BufRead *.net set filetype=netc
