package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/omnigate/omnigate/insight/corpus"
)

// Chinese customers' neutral questions, made from frames and topics written
// for omnigate: the review corpora have no neutral text, and a model trained
// on reviews alone takes a question (怎么, 为什么) for a complaint.
var (
	zhFrames = []string{
		"请问%s？", "你好，%s？", "想问一下，%s？", "麻烦问下%s？", "%s？谢谢", "您好，请问%s", "咨询一下，%s？",
		"我想了解%s", "能告诉我%s吗？", "请帮我看看%s", "%s呢？", "在吗？%s？", "打扰一下，%s？", "%s，麻烦了",
	}
	zhTopics = []string{
		"怎么修改收货地址", "怎么查询订单状态", "可以开发票吗", "什么时候发货", "快递到了哪里", "怎么申请退货",
		"退款多久到账", "怎么绑定银行卡", "怎么修改手机号", "密码忘了怎么重置", "会员怎么续费", "积分怎么使用",
		"有没有优惠券", "支持货到付款吗", "可以寄到国外吗", "周末营业吗", "客服几点上班", "怎么注销账号",
		"怎么更换头像", "能不能改成顺丰", "这个商品有现货吗", "尺码怎么选", "保修期是多久", "怎么预约安装",
		"发票抬头怎么改", "怎么添加收件人", "订单可以合并发货吗", "为什么要实名认证", "为什么需要验证码",
		"怎么开通自动扣款", "怎么关闭自动续费", "信用卡额度怎么查", "转账一般多久到", "怎么查看账单明细",
		"外币怎么兑换", "卡片什么时候寄到", "怎么激活新卡", "怎么设置支付密码", "能不能分期付款", "运费怎么算",
		"怎么联系人工客服", "APP在哪里下载", "怎么切换成英文界面", "可以修改订单吗", "礼品卡怎么用",
		"价格会不会调整", "怎么开通短信提醒", "怎么更新身份证信息", "门店地址在哪里", "可以自提吗",
	}
)

// zhNeutral returns n neutral questions.
func zhNeutral(n int, seed uint64) []corpus.Row {
	rng := rand.New(rand.NewPCG(seed, 2))
	seen := map[string]bool{}
	var out []corpus.Row
	for len(out) < n && len(seen) < len(zhFrames)*len(zhTopics) {
		f, t := zhFrames[rng.IntN(len(zhFrames))], zhTopics[rng.IntN(len(zhTopics))]
		s := fmt.Sprintf(f, t)
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, corpus.Row{Text: s, Label: "neutral"})
	}
	return out
}
