//! Chunk encodings (format brief §1.5): the XOR (Gorilla) float chunk.
