# A small stand-in for chef-solo, for tests on machines without Chef Infra
# Client: it evaluates the cookbooks' metadata, libraries and attribute
# files, an environment and a role with Chef's attribute precedence, runs
# the run list's recipes (include_recipe, data_bag_item), and then, instead
# of converging, writes what the resources would produce under OUT/root:
# rendered templates and file contents. OUT/resources.json lists every
# resource with its properties. Nothing on the machine is changed and no
# command is run.
#
# It checks what Chef would check at these stages: unknown resources or
# properties, missing templates and cookbook files, include_recipe of a
# cookbook outside the dependencies, and notifications to resources that do
# not exist. Guards (only_if, not_if) are recorded, not evaluated.
#
#   ruby chefstub.rb --cookbooks DIR --out DIR [--data-bags DIR]
#        [--environment FILE] [--role FILE] [--node FILE] [--run-list LIST]
#
# --node is chef-solo's -j file: normal attributes and a run_list.

require 'erb'
require 'fileutils'
require 'json'
require 'optparse'
require 'set'

module ChefStub
  # Attribute maps that create missing levels on access, as Chef's do when
  # attribute files write default['a']['b'] = 1.
  class VividHash < Hash
    def [](key)
      key = key.to_s
      key?(key) ? super(key) : store(key, VividHash.new)
    end

    def []=(key, value)
      super(key.to_s, value)
    end
  end

  def self.vivid(value)
    case value
    when Hash then value.each_with_object(VividHash.new) { |(k, v), h| h[k] = vivid(v) }
    when Array then value.map { |v| vivid(v) }
    else value
    end
  end

  # Higher layers win; maps merge, everything else is replaced.
  def self.deep_merge(low, high)
    return high unless low.is_a?(Hash) && high.is_a?(Hash)
    out = low.dup
    high.each { |k, v| out[k] = out.key?(k) ? deep_merge(out[k], v) : v }
    out
  end

  def self.plain(value)
    case value
    when Hash then value.each_with_object({}) { |(k, v), h| h[k.to_s] = plain(v) }
    when Array then value.map { |v| plain(v) }
    else value
    end
  end

  def self.freeze_deep(value)
    case value
    when Hash then value.each_value { |v| freeze_deep(v) }
    when Array then value.each { |v| freeze_deep(v) }
    end
    value.freeze
  end

  class Node
    # Chef's precedence, lowest first.
    LAYERS = %i(default env_default role_default normal override role_override env_override automatic).freeze

    attr_reader :run_state, :name

    def initialize(name, automatic)
      @name = name
      @layers = LAYERS.to_h { |l| [l, VividHash.new] }
      @layers[:automatic] = ChefStub.vivid(automatic)
      @run_state = {}
      @recipes = []
    end

    def layer(name)
      @layers.fetch(name)
    end

    def set_layer(name, value)
      @layers[name] = ChefStub.vivid(value || {})
    end

    def default
      @layers[:default]
    end

    def override
      @layers[:override]
    end

    def normal
      @layers[:normal]
    end

    def merged
      m = LAYERS.map { |l| ChefStub.plain(@layers[l]) }.reduce { |a, b| ChefStub.deep_merge(a, b) }
      ChefStub.freeze_deep(m)
    end

    # Reads see every layer merged and may not write, like Chef's
    # node['a'] (writes go through default[...] or override[...]).
    def [](key)
      merged[key.to_s]
    end

    def dig(*keys)
      merged.dig(*keys.map(&:to_s))
    end

    def key?(key)
      merged.key?(key.to_s)
    end

    # Whether the run list (or an include_recipe so far) has the recipe.
    def recipe?(name)
      name = "#{name}::default" unless name.include?('::')
      @recipes.include?(name)
    end

    def recipes
      @recipes ||= []
    end

    def platform_family?(*families)
      families.flatten.map(&:to_s).include?(self['platform_family'])
    end

    def platform?(*platforms)
      platforms.flatten.map(&:to_s).include?(self['platform'])
    end
  end

  # Properties each resource type accepts (Chef's own lists are longer; a
  # property missing here is one the cookbooks have not needed yet).
  COMMON = %w(action notifies subscribes only_if not_if ignore_failure sensitive retries retry_delay).freeze
  RESOURCES = {
    'package' => %w(package_name version options),
    'apt_package' => %w(package_name version options),
    'group' => %w(group_name gid members system append),
    'user' => %w(username comment uid gid home shell system manage_home password),
    'directory' => %w(path owner group mode recursive),
    'template' => %w(path source cookbook variables owner group mode helpers verify backup local),
    'file' => %w(path content owner group mode verify backup),
    'cookbook_file' => %w(path source cookbook owner group mode backup),
    'remote_file' => %w(path source checksum owner group mode headers backup),
    'service' => %w(service_name supports reload_command restart_command),
    'execute' => %w(command cwd environment user group creates returns live_stream timeout umask),
    'link' => %w(target_file to link_type owner group),
    'log' => %w(message level),
  }.freeze

  class Resource
    # home_cookbook, not cookbook: that is a property of templates.
    attr_reader :type, :name, :home_cookbook, :recipe, :props

    def initialize(type, name, recipe)
      @type = type
      @name = name
      @recipe = recipe
      @home_cookbook = recipe.cookbook
      @props = { 'notifies' => [], 'subscribes' => [] }
    end

    def node
      @recipe.node
    end

    def id
      "#{type}[#{name.is_a?(Array) ? name.join(', ') : name}]"
    end

    def allowed?(prop)
      COMMON.include?(prop) || RESOURCES.fetch(type).include?(prop)
    end

    # Every property is a method, so that none resolves to a Kernel method
    # of the same name (system, format, test...).
    (COMMON + RESOURCES.values.flatten).uniq.each do |prop|
      define_method(prop) do |*args, &block|
        raise NoMethodError, "#{id} (#{@recipe.label}): undefined property #{prop}" unless allowed?(prop)
        if args.empty? && block.nil?
          @props[prop]
        elsif %w(notifies subscribes).include?(prop)
          @props[prop] << args
        else
          @props[prop] = block || (args.length == 1 ? args.first : args)
        end
      end
    end

    # Anything else the block calls is the recipe's (node, data_bag_item,
    # ...), as in Chef; locals are closures anyway.
    def method_missing(meth, *args, &block)
      return @recipe.public_send(meth, *args, &block) if @recipe.respond_to?(meth)
      raise NoMethodError, "#{id} (#{@recipe.label}): undefined property #{meth}"
    end

    def respond_to_missing?(meth, include_private = false)
      @recipe.respond_to?(meth) || super
    end

    def to_h
      props = @props.transform_values do |v|
        case v
        when Proc then '<block>'
        when Module then v.name
        else ChefStub.plain(v)
        end
      end
      { 'type' => type, 'name' => name, 'id' => id, 'cookbook' => home_cookbook, 'recipe' => @recipe.label, 'props' => props }
    end
  end

  # The methods recipes call, as in Chef::Recipe.
  class Recipe
    attr_reader :cookbook, :label

    def initialize(run, cookbook, name)
      @run = run
      @cookbook = cookbook
      @label = "#{cookbook}::#{name}"
    end

    def node
      @run.node
    end

    def include_recipe(spec)
      @run.include_recipe(spec, from: @cookbook)
    end

    def data_bag_item(bag, item, _secret = nil)
      @run.data_bag_item(bag, item)
    end

    def platform_family?(*f)
      node.platform_family?(*f)
    end

    def platform?(*p)
      node.platform?(*p)
    end

    RESOURCES.each_key do |type|
      define_method(type) do |name = nil, &block|
        r = Resource.new(type, name, self)
        r.instance_eval(&block) if block
        @run.add(r)
        r
      end
    end
  end

  class Metadata
    attr_reader :deps

    def initialize
      @deps = []
      @fields = {}
    end

    %w(name maintainer maintainer_email license description long_description version chef_version
       issues_url source_url).each do |f|
      define_method(f) { |v = nil| v.nil? ? @fields[f] : (@fields[f] = v) }
    end

    def supports(*_args); end

    def depends(name, *_constraints)
      @deps << name
    end
  end

  # Chef's template context: node, the variables as instance variables,
  # and helper modules.
  class TemplateContext
    def initialize(node, vars, helpers)
      @node = node
      (vars || {}).each { |k, v| instance_variable_set("@#{k}", v) }
      helpers.each { |m| extend m }
    end

    def node
      @node
    end

    def render(text, path)
      erb = ERB.new(text, trim_mode: '-')
      erb.filename = path
      erb.result(binding)
    end
  end

  class Run
    attr_reader :node

    def initialize(opts)
      @opts = opts
      @cookbooks_dir = opts[:cookbooks]
      @resources = []
      @included = Set.new
      @node = Node.new('stub-node', 'ipaddress' => '192.0.2.10', 'hostname' => 'stub-node',
                                    'fqdn' => 'stub-node.example.com', 'platform' => 'debian',
                                    'platform_family' => 'debian', 'platform_version' => '12')
      @metadata = {}
    end

    def cookbook_dir(name)
      dir = File.join(@cookbooks_dir, name)
      raise "cookbook #{name} not found in #{@cookbooks_dir}" unless File.directory?(dir)
      dir
    end

    def metadata(name)
      @metadata[name] ||= begin
        md = Metadata.new
        path = File.join(cookbook_dir(name), 'metadata.rb')
        md.instance_eval(File.read(path), path)
        raise "#{path}: name is #{md.name.inspect}, not #{name.inspect}" unless md.name == name
        md
      end
    end

    # The cookbooks of the run list and their dependencies.
    def closure(names)
      seen = []
      todo = names.dup
      until todo.empty?
        n = todo.shift
        next if seen.include?(n)
        seen << n
        todo.concat(metadata(n).deps)
      end
      seen
    end

    def parse_run_list(list)
      list.map do |item|
        m = item.match(/\Arecipe\[([^\]]+)\]\z/) || item.match(/\A([\w:]+)\z/)
        raise "run list item #{item.inspect}: only recipe[...] is supported" unless m
        m[1]
      end
    end

    def load_json(path)
      path ? JSON.parse(File.read(path)) : {}
    end

    def start
      env = load_json(@opts[:environment])
      role = load_json(@opts[:role])
      node_json = load_json(@opts[:node])
      @node.set_layer(:env_default, env['default_attributes'])
      @node.set_layer(:env_override, env['override_attributes'])
      @node.set_layer(:role_default, role['default_attributes'])
      @node.set_layer(:role_override, role['override_attributes'])
      @node.set_layer(:normal, node_json.reject { |k, _| k == 'run_list' })
      run_list = parse_run_list((@opts[:run_list] || []) + (role['run_list'] || []) + (node_json['run_list'] || []))
      raise 'empty run list' if run_list.empty?
      @node.recipes.concat(run_list.map { |r| r.include?('::') ? r : "#{r}::default" })
      @cookbooks = closure(run_list.map { |r| r.split('::').first })

      # Chef's order: libraries, then attributes, then recipes.
      @cookbooks.each do |cb|
        Dir[File.join(cookbook_dir(cb), 'libraries', '*.rb')].sort.each { |f| load f }
      end
      @cookbooks.each do |cb|
        Dir[File.join(cookbook_dir(cb), 'attributes', '*.rb')].sort_by { |f| File.basename(f) == 'default.rb' ? '' : f }.each do |f|
          AttributeFile.new(@node).instance_eval(File.read(f), f)
        end
      end
      run_list.each { |r| include_recipe(r, from: nil) }
      converge
    end

    def include_recipe(spec, from:)
      cb, name = spec.split('::', 2)
      name ||= 'default'
      unless @cookbooks.include?(cb)
        raise "include_recipe #{spec} from #{from}: cookbook #{cb} is not a dependency of the run list"
      end
      return if @included.include?("#{cb}::#{name}")
      @included << "#{cb}::#{name}"
      @node.recipes << "#{cb}::#{name}" unless @node.recipes.include?("#{cb}::#{name}")
      path = File.join(cookbook_dir(cb), 'recipes', "#{name}.rb")
      raise "recipe #{spec} not found (#{path})" unless File.exist?(path)
      Recipe.new(self, cb, name).instance_eval(File.read(path), path)
    end

    def data_bag_item(bag, item)
      dir = @opts[:data_bags] or raise "data_bag_item(#{bag}, #{item}): no data bags given"
      path = File.join(dir, bag, "#{item}.json")
      raise "data_bag_item(#{bag}, #{item}): #{path} not found" unless File.exist?(path)
      JSON.parse(File.read(path))
    end

    def add(resource)
      @resources << resource
    end

    def find_file(cb, kind, source)
      path = File.join(cookbook_dir(cb), kind, source)
      raise "#{kind}/#{source} not found in cookbook #{cb}" unless File.exist?(path)
      path
    end

    def out_path(path)
      raise "#{path.inspect} is not an absolute path" unless path.to_s.start_with?('/')
      File.join(@opts[:out], 'root', path)
    end

    def write(path, content)
      dest = out_path(path)
      FileUtils.mkdir_p(File.dirname(dest))
      File.write(dest, content)
    end

    def converge
      ids = @resources.map(&:id).to_set
      @resources.each do |r|
        (r.props['notifies'] + r.props['subscribes']).each do |args|
          target = args[1]
          unless target.is_a?(String) && ids.include?(target)
            raise "#{r.id} (#{r.recipe.label}): notification to #{target.inspect}, which is not in the resource collection"
          end
        end
        path = r.props['path'] || r.name
        case r.type
        when 'template'
          src = find_file(r.props['cookbook'] || r.home_cookbook, 'templates', r.props['source'] || "#{File.basename(path)}.erb")
          ctx = TemplateContext.new(@node, r.props['variables'], Array(r.props['helpers']))
          write(path, ctx.render(File.read(src), src))
        when 'file'
          write(path, r.props['content']) if r.props['content']
        when 'cookbook_file'
          write(path, File.read(find_file(r.props['cookbook'] || r.home_cookbook, 'files', r.props['source'] || File.basename(path))))
        end
      end
      FileUtils.mkdir_p(@opts[:out])
      File.write(File.join(@opts[:out], 'resources.json'), JSON.pretty_generate(@resources.map(&:to_h)))
    end
  end

  # The methods attribute files call.
  class AttributeFile
    def initialize(node)
      @node = node
    end

    attr_reader :node

    def default
      @node.default
    end

    def override
      @node.override
    end

    def normal
      @node.normal
    end
  end
end

# Recipes refer to Chef::Log.
module Chef
  module Log
    def self.warn(msg)
      warn_messages << msg
    end

    def self.info(_msg); end

    def self.debug(_msg); end

    def self.warn_messages
      @warn_messages ||= []
    end
  end
end

opts = { run_list: [] }
OptionParser.new do |o|
  o.on('--cookbooks DIR') { |v| opts[:cookbooks] = v }
  o.on('--out DIR') { |v| opts[:out] = v }
  o.on('--data-bags DIR') { |v| opts[:data_bags] = v }
  o.on('--environment FILE') { |v| opts[:environment] = v }
  o.on('--role FILE') { |v| opts[:role] = v }
  o.on('--node FILE') { |v| opts[:node] = v }
  o.on('--run-list LIST') { |v| opts[:run_list] = v.split(',') }
end.parse!
abort 'usage: chefstub.rb --cookbooks DIR --out DIR [...]' unless opts[:cookbooks] && opts[:out]
ChefStub::Run.new(opts).start
