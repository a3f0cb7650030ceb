"""Staff act by mail: signed action links in the digest, and the commands they send back."""
