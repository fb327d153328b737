"""The CrossGuard policy pack: `policy.controls_pack` builds one policy per compliance control."""
