" Vim syntax file for netc network files (*.net), for Vim and Neovim.
" Kept in sync with the language by tests/test_vim.py: every keyword, op, builtin, dtype
" and train-section name of netc has its group here.

if exists("b:current_syntax")
  finish
endif

syn case match

syn keyword netcConditional if else
syn keyword netcRepeat for in
syn keyword netcStatement return
syn keyword netcInclude import
syn keyword netcDeclaration const block model train nextgroup=netcDefName skipwhite
syn keyword netcOperatorWord and or not
syn keyword netcConstant true false none

syn match netcDefName "\<[A-Za-z_][A-Za-z0-9_]*\>" contained
syn match netcBlockCall "\<[A-Za-z_][A-Za-z0-9_]*\>\ze\s*("
syn match netcPipedBlock "\(|>\s*\)\@<=\<[A-Za-z_][A-Za-z0-9_]*\>"

" the ops a .net file may call (netc.elaborate.LANGUAGE_OPS)
syn keyword netcOp abs add argmax avgpool batchnorm broadcast_like cast concat conv1d
syn keyword netcOp conv1d_transpose conv2d conv2d_transpose conv3d conv3d_transpose dense
syn keyword netcOp depthwise_conv1d depthwise_conv2d div dropout elu embedding exp expand_dims
syn keyword netcOp flatten gelu global_avgpool global_maxpool gru hard_sigmoid hard_silu hard_swish
syn keyword netcOp layernorm leaky_relu log lstm matmul maximum maxpool minimum mul
syn keyword netcOp multi_head_attention neg pad positional_embedding reduce_max reduce_mean
syn keyword netcOp reduce_min reduce_prod reduce_sum relu relu6 reshape resize separable_conv1d
syn keyword netcOp separable_conv2d sigmoid silu slice softmax softplus split sqrt squeeze sub tanh
syn keyword netcOp transpose upsample
" the compile-time builtins (netc.elaborate.BUILTINS, less those that are ops)
syn keyword netcBuiltin channels constant dtype enumerate float glorot_normal glorot_uniform
syn keyword netcBuiltin he_normal he_uniform int lecun_normal lecun_uniform len max min ones
syn keyword netcBuiltin orthogonal random_normal random_uniform range rank reversed shape str sum
syn keyword netcBuiltin truncated_normal variance_scaling weight zeros zip
" dtypes and parameter types
syn keyword netcType any bf16 bool f16 f32 f64 float i32 i64 int list str tensor tuple

" the train section: its settings and the losses, optimizers, schedules, callbacks, metrics
syn region netcTrain matchgroup=netcDeclaration start="\<train\>\s*{" end="}" contains=netcTrainSetting,netcTrainName,netcComment,netcString,netcNumber,netcConstant,netcKwarg,netcPipe,netcOperator
syn match netcTrainSetting "\<[a-z_]\+\>\ze\s*=[^=]" contained
syn keyword netcTrainName accuracy adagrad adam adamw auc binary_accuracy binary_crossentropy
syn keyword netcTrainName categorical_accuracy categorical_crossentropy cosine_decay cross_entropy
syn keyword netcTrainName early_stopping exponential_decay huber mae mean_absolute_error
syn keyword netcTrainName mean_squared_error model_checkpoint mse per_output
syn keyword netcTrainName piecewise_constant_decay precision recall reduce_lr_on_plateau rmsprop
syn keyword netcTrainName sgd sparse_categorical_accuracy sparse_categorical_crossentropy
syn keyword netcTrainName sparse_cross_entropy sparse_top_k_categorical_accuracy
syn keyword netcTrainName top_k_categorical_accuracy contained

syn match netcKwarg "\<[A-Za-z_][A-Za-z0-9_]*\>\ze\s*=[^=]" contained
syn region netcParens matchgroup=netcDelimiter start="(" end=")" transparent contains=TOP,netcKwarg
syn cluster netcTop contains=TOP

syn match netcPipe "|>"
syn match netcOperator "->\|\*\*\|//\|==\|!=\|<=\|>=\|[-+*/%@<>=]"
syn match netcNumber "\<\d\+\(\.\d*\)\=\([eE][-+]\=\d\+\)\=\>"
syn match netcNumber "\.\d\+\([eE][-+]\=\d\+\)\=\>"
syn region netcString start=+"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=netcEscape
syn region netcString start=+\<f"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=netcEscape,netcInterpolation
syn match netcEscape "\\." contained
syn region netcInterpolation matchgroup=netcDelimiter start="{\@!" end="}" contained contains=netcOp,netcBuiltin,netcNumber,netcOperator,netcConstant
syn match netcComment "#.*$" contains=netcTodo,@Spell
syn keyword netcTodo TODO FIXME XXX NOTE contained

hi def link netcConditional Conditional
hi def link netcRepeat Repeat
hi def link netcStatement Statement
hi def link netcInclude Include
hi def link netcDeclaration Keyword
hi def link netcOperatorWord Operator
hi def link netcConstant Boolean
hi def link netcDefName Function
hi def link netcBlockCall Structure
hi def link netcPipedBlock Structure
hi def link netcOp Function
hi def link netcBuiltin Special
hi def link netcType Type
hi def link netcTrainSetting Identifier
hi def link netcTrainName Constant
hi def link netcKwarg Identifier
hi def link netcPipe Operator
hi def link netcOperator Operator
hi def link netcNumber Number
hi def link netcString String
hi def link netcEscape SpecialChar
hi def link netcDelimiter Delimiter
hi def link netcComment Comment
hi def link netcTodo Todo

let b:current_syntax = "netc"
