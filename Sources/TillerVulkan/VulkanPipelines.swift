import CVulkan
import TillerCore

/// A compute pipeline whose storage buffers are pushed per dispatch (VK_KHR_push_descriptor), so
/// no descriptor pools or sets need managing, and whose parameters are 32 push-constant words.
final class ComputePipeline {
    let pipeline: VkPipeline
    let layout: VkPipelineLayout
    let setLayout: VkDescriptorSetLayout
    let bindingCount: Int
    let device: VulkanDevice  // strong: buffers and pipelines may outlive the backend

    static let pushConstantWords = 32

    init(device: VulkanDevice, cache: VkPipelineCache?, source: ShaderModuleSource, bindingCount: Int, specialization: [UInt32]) throws {
        self.device = device
        self.bindingCount = bindingCount
        let d = device.handle
        var bindings = (0..<bindingCount).map { i -> VkDescriptorSetLayoutBinding in
            var b = VkDescriptorSetLayoutBinding()
            b.binding = UInt32(i)
            b.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            b.descriptorCount = 1
            b.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
            return b
        }
        var setInfo = VkDescriptorSetLayoutCreateInfo()
        setInfo.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
        setInfo.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR.rawValue
        setInfo.bindingCount = UInt32(bindingCount)
        var setLayout: VkDescriptorSetLayout?
        try bindings.withUnsafeMutableBufferPointer { p in
            setInfo.pBindings = UnsafePointer(p.baseAddress)
            try vkCheck(vkCreateDescriptorSetLayout(d, &setInfo, nil, &setLayout), "creating the descriptor layout of \(source.name)")
        }
        self.setLayout = setLayout!

        var range = VkPushConstantRange()
        range.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
        range.size = UInt32(Self.pushConstantWords * 4)
        var layoutInfo = VkPipelineLayoutCreateInfo()
        layoutInfo.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
        layoutInfo.setLayoutCount = 1
        layoutInfo.pushConstantRangeCount = 1
        var layout: VkPipelineLayout?
        try withUnsafePointer(to: &setLayout) { sl in
            try withUnsafePointer(to: &range) { r in
                layoutInfo.pSetLayouts = sl
                layoutInfo.pPushConstantRanges = r
                try vkCheck(vkCreatePipelineLayout(d, &layoutInfo, nil, &layout), "creating the pipeline layout of \(source.name)")
            }
        }
        self.layout = layout!

        let words = source.words
        var module: VkShaderModule?
        try words.withUnsafeBufferPointer { code in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = code.count * 4
            info.pCode = code.baseAddress
            try vkCheck(vkCreateShaderModule(d, &info, nil, &module), "loading shader \(source.name)")
        }
        defer { vkDestroyShaderModule(d, module, nil) }

        var entries = specialization.indices.map { i -> VkSpecializationMapEntry in
            VkSpecializationMapEntry(constantID: UInt32(i), offset: UInt32(i * 4), size: 4)
        }
        var values = specialization
        var pipeline: VkPipeline?
        let result: VkResult = entries.withUnsafeMutableBufferPointer { e in
            values.withUnsafeMutableBytes { v in
                var spec = VkSpecializationInfo(mapEntryCount: UInt32(e.count), pMapEntries: e.baseAddress,
                                                dataSize: v.count, pData: v.baseAddress)
                return withUnsafePointer(to: &spec) { specPointer in
                    "main".withCString { entry in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module
                        stage.pName = entry
                        stage.pSpecializationInfo = specialization.isEmpty ? nil : specPointer
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout
                        return vkCreateComputePipelines(d, cache, 1, &info, nil, &pipeline)
                    }
                }
            }
        }
        try vkCheck(result, "creating the pipeline of \(source.name)")
        self.pipeline = pipeline!
    }

    deinit {
        vkDestroyPipeline(device.handle, pipeline, nil)
        vkDestroyPipelineLayout(device.handle, layout, nil)
        vkDestroyDescriptorSetLayout(device.handle, setLayout, nil)
    }
}
