"""What every piaojue service uses. No service's rules live here."""
