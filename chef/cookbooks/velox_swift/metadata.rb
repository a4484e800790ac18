name             'velox_swift'
maintainer       'The Velox authors'
description      "OpenStack Swift from Debian's packages for Velox: storage nodes, proxy nodes and rings"
version          '0.1.0'
chef_version     '>= 16.0'
supports         'debian', '>= 12.0'
