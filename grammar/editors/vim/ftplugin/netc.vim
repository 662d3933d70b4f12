" netc: `#` comments, four-space indentation, as `netc fmt` writes.
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

setlocal commentstring=#\ %s comments=:#
setlocal expandtab shiftwidth=4 softtabstop=4 tabstop=4
setlocal formatoptions-=t formatoptions+=croql
if executable("netc")
  setlocal formatprg=netc\ fmt\ -
endif

let b:undo_ftplugin = "setlocal commentstring< comments< expandtab< shiftwidth< softtabstop<"
      \ . " tabstop< formatoptions< formatprg<"
