#
# Recipe:: velox_swift::default
#
# Nothing by itself: give a node velox_swift::storage, velox_swift::proxy
# and/or velox_swift::rings (see README.md).
include_recipe 'velox_swift::common'
