"""Bundle -> dependency-free C99: generated encoders/decoders and the `.eae` codec."""
