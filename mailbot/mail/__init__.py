"""Mail in and out: message model, header decoding, MIME walk, containers, loops, composition."""
