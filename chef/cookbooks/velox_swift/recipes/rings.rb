#
# Recipe:: velox_swift::rings
#
# On the one ring-builder node: builds the account, container and object
# rings from node['velox_swift']['rings'] with velox-swift-rings, and
# brings them in line when the node list changes (new devices added,
# weights changed, removed devices dropped, then a rebalance). The builder
# files stay in swift_dir; back them up. Other nodes fetch the ring files
# from ['rings']['url'].
include_recipe 'velox_swift::common'

swift_dir = node['velox_swift']['swift_dir']
spec_path = "#{swift_dir}/rings.json"
script = '/usr/local/bin/velox-swift-rings'

cookbook_file script do
  source 'velox-swift-rings'
  owner 'root'
  group 'root'
  mode '0755'
end

file spec_path do
  content JSON.pretty_generate(VeloxSwiftCookbook.ring_spec(node)) + "\n"
  owner 'root'
  group node['velox_swift']['group']
  mode '0644'
end

# Runs only when the rings differ from the spec (--check), so an unchanged
# cluster converges without touching them.
execute 'velox-swift-rings' do
  command "#{script} #{spec_path} #{swift_dir}"
  user node['velox_swift']['user']
  only_if "#{script} --check #{spec_path} #{swift_dir}"
end
