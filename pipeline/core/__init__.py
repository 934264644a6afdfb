"""What every layer uses and nothing above it defines: errors, atomic writes (`io`), the data
contract, feature metadata, the catalogue of file names, secret masking, id pseudonyms and file
hashes. Imports nothing from the rest of the package."""
