" netc: indent after a line ending in `{`, `(` or `[`, dedent a line starting with `}`, `)`, `]`.
if exists("b:did_indent")
  finish
endif
let b:did_indent = 1

setlocal indentexpr=NetcIndent(v:lnum) indentkeys+=0},0),0]
let b:undo_indent = "setlocal indentexpr< indentkeys<"

if exists("*NetcIndent")
  finish
endif

function! NetcIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let code = substitute(getline(prev), '\s*#.*$', '', '')
  let ind = indent(prev)
  if code =~# '[{([]\s*$'
    let ind += shiftwidth()
  endif
  if getline(a:lnum) =~# '^\s*[})\]]'
    let ind -= shiftwidth()
  endif
  return ind
endfunction
